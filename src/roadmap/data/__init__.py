"""Data: the datasets (sources.py; Fashion-MNIST's idx files read in fashion_mnist.py), the two
pipelines that make training batches, loader workers (loaders.py) or batched on the device
(pipelines.py, augment.py), and every seed they derive (seeds.py). Imports only the schema, errors
and files. The shipped Fashion-MNIST subset is fashion_mnist_small.npz here."""
