"""Each config file parsed once per process. Hydra reads and parses every file of a composition again at each
composition (a step is a chain of up to 13 step files, over some 20 others), and composing is most of what a refused
command, a notebook's `load_config` or a test costs. Through Hydra's plugin API (a config source and a search-path
plugin), the application's config folder (the search path's `main` entry: configs/) is read by a source of files that
keeps what it parsed by path and content and gives each composition a copy of its own: a file changed in place
(whatever its time and size), added or removed is seen at the next composition, as before, and a composition may
change its copy. Otherwise it reads a folder as Hydra's own source of files (file://) does. files.check_files, which
names a file that is not valid YAML before Hydra reads any, parses through the same cache."""
from __future__ import annotations

import copy
import functools
import io
import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

SCHEME = "roadmap-file"


class ParsedOnceFileConfigSource(ConfigSource):
    """A folder of YAML files, each content of a file parsed once."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path if "://" in path else f"{SCHEME}://{path}")

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _file(self, config_path: str) -> str:
        return os.path.realpath(os.path.join(self.path, config_path))

    def available(self) -> bool:
        return self.is_group("")

    def is_group(self, config_path: str) -> bool:
        return os.path.isdir(self._file(config_path))

    def is_config(self, config_path: str) -> bool:
        return os.path.isfile(self._file(self._normalize_file_name(config_path)))

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        files: list[str] = []
        for name in os.listdir(self._file(config_path)):
            self._list_add_result(files=files, file_path=os.path.join(config_path, name), file_name=name,
                                  results_filter=results_filter)
        return sorted(set(files))

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._file(self._normalize_file_name(config_path))
        try:
            config, header = parse(path)
        except OSError:
            raise ConfigLoadError(f"Config not found : {path}") from None
        return ConfigResult(config=copy.deepcopy(config), path=f"{SCHEME}://{self.path}", provider=self.provider,
                            header=dict(header))


def parse(path: str) -> tuple[DictConfig, dict]:
    """A YAML file's config and Hydra header, parsed once for each content of the file (the same objects each time:
    never to be changed). OSError if it cannot be read; yaml's or OmegaConf's error if it does not parse."""
    path = os.path.realpath(path)
    with open(path, "rb") as f:
        return _parsed(path, f.read())


@functools.lru_cache(maxsize=1024)
def _parsed(path: str, content: bytes) -> tuple[DictConfig, dict]:
    text = content.decode("utf-8")
    stream = io.StringIO(text)
    stream.name = path  # where a YAML error says it is, as when Hydra reads the file
    return OmegaConf.load(stream), ConfigSource._get_header_dict(text[:512])


class MainConfigsParsedOnce(SearchPathPlugin):
    """The application's config folder (`main`: a folder, as initialize_config_dir gives it, or a file:// path, as
    hydra.main does) read through the source above."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for element in search_path.get_path():
            if element.provider == "main" and (element.path.startswith("file://") or "://" not in element.path):
                element.path = f"{SCHEME}://{element.path.removeprefix('file://')}"


def register_parsed_once() -> None:
    Plugins.instance().register(ParsedOnceFileConfigSource)
    Plugins.instance().register(MainConfigsParsedOnce)
