#!/usr/bin/env bash
# The one prepared command for a lent GPU. From the project root on the GPU machine, after prepare.sh's prefix:
#
#   bash scripts/gpu_check.sh "$OUT" 480            # at most 480 s of measurements, then one archive in $OUT
#   bash scripts/gpu_check.sh /tmp/check 60 --tiny  # the same path on the CPU, tiny settings (tests/test_gpu_check.py)
#
# In order, each phase bounded by what is left of the budget (a phase that does not fit is skipped and named in
# gpu_check/log.txt; with --tiny, a test of the path, every phase runs however busy the machine is and the budget
# only bounds each phase's wall time at an hour):
#   1. every step's training images/s, eager, bf16, channels_last, at 224 and at 32, with ours / timm and ours /
#      torchvision for the first and last steps (scripts/benchmark.py --reference; r50 at 224, femto at 32)
#   2. the real pipeline's fraction of synthetic at 32 on full Fashion-MNIST (femto steps, device pipeline)
#   3. the same per-step figures compiled (torch.compile), one step at a time until the time given to it ends
#   4. as much of the femto study (+experiment=femto: the CPU study's profile, jobs one after another) as fits
# Everything goes into gpu_check/ and is packed as $OUT/gpu_check.tar.gz (one file: the device tool brings back
# at most 8). Data: data.root=.fmnist (prepare.sh puts the full Fashion-MNIST there).
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [BUDGET_SECONDS] [--tiny]}
budget=${2:-480}
tiny=${3:-}
[[ $tiny == --tiny ]] && budget=3600  # the path is tested, not the budget: nothing is skipped for time
start=$(date +%s)
work=$(mktemp -d)/gpu_check
mkdir -p "$work" "$out"
log=$work/log.txt
left() { echo $(( budget - ($(date +%s) - start) )); }
say() { echo "[$(date -u +%FT%TZ), $(left) s left] $*" | tee -a "$log"; }

root=.fmnist; [[ -d $root ]] || root=/usr/share/datasets/fashion-mnist
if [[ $tiny == --tiny ]]; then
  steps=(baseline/resnet50 micro/separate_downsample); bench=(--windows 1 --iters 1 --warmup 1 --batch-size 8)
  res_big=32; sweep=(budget.max_train_iters=2 budget.max_eval_iters=1 budget.epochs=1 train.batch_size=16
                     data=fashion_mnist_small data.root= "step=macro/patchify" seed=0)
  data=(--data fashion_mnist_small); precision=fp32
else
  steps=(all); bench=(); res_big=224; sweep=(data.root="$root"); data=(--data fashion_mnist --data-root "$root")
  precision=bf16
fi
say "gpu_check on $(python -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", end=", torch "); print(torch.__version__)'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

phase() {  # name, seconds it may take at most, command...
  local name=$1 limit=$2; shift 2
  local avail; avail=$(left)
  [[ $tiny == --tiny ]] && limit=600  # each phase at most 10 min, whatever runs beside it
  (( limit > avail )) && limit=$avail
  if (( limit < 10 )); then say "skipped $name: no time left"; return 1; fi
  say "start $name (at most $limit s): $*"
  timeout -k 5 "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  say "end $name: exit $rc$([[ $rc == 124 ]] && echo ' (out of time: partial)')"
  return $rc
}

eager=(--precision "$precision" --memory-format channels_last "${bench[@]}")
phase "eager $res_big r50" 90 python scripts/benchmark.py --steps "${steps[@]}" --reference --resolution "$res_big" \
  "${eager[@]}" --out "$work/eager_${res_big}_r50"
phase "eager 32 femto" 60 python scripts/benchmark.py --regime femto --steps "${steps[@]}" --reference \
  --resolution 32 --num-classes 10 "${eager[@]}" --out "$work/eager_32_femto"
phase "real pipeline 32 femto" 60 python scripts/benchmark.py --regime femto --steps "${steps[@]}" --resolution 32 \
  "${data[@]}" --pipeline device "${eager[@]}" --out "$work/real_32_femto"
if [[ ${steps[0]} == all ]]; then
  mapfile -t each < <(python -c 'from roadmap import roadmap_steps; print("\n".join(s.name for s in roadmap_steps()))')
else
  each=("${steps[@]}")
fi
compile_until=$(( $(date +%s) + $(left) / 2 ))  # half of what is left, the other half for the study
pairs=("$res_big:r50" "32:femto")
[[ $tiny == --tiny ]] && { pairs=("32:femto"); each=(micro/separate_downsample); }  # one compile: CPUs are slow at it
for step in "${each[@]}"; do
  for pair in "${pairs[@]}"; do
    r=${pair%%:*}; regime=${pair##*:}
    t=$(( compile_until - $(date +%s) ))
    phase "compiled $r $regime $step" "$t" python scripts/benchmark.py --regime "$regime" --steps "$step" \
      --reference --resolution "$r" --compile "${eager[@]}" --out "$work/compiled_${r}_${regime}/${step//\//_}" || break 2
  done
done
phase "femto study" $(( $(left) - 15 )) python run.py -m +experiment=femto wandb=disabled "${sweep[@]}" \
  hydra.sweep.dir="$work/femto_study"
find "$work/femto_study" -name checkpoint.pt -delete 2>/dev/null
say "done; packing"
tar -czf "$out/gpu_check.tar.gz" -C "$(dirname "$work")" gpu_check
echo "wrote $out/gpu_check.tar.gz"
