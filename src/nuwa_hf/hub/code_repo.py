"""The one code repository that serves NUWA's remote code, for people who cannot install nuwa-hf.

Model folders hold data (config, weights, generation config, processor files, checksums, card), never code: with
nuwa-hf installed the registered classes load them and ``trust_remote_code`` is never needed. For everyone else the
project publishes its code once per version to a Hub *code repository*:

    >>> from nuwa_hf.hub import push_code
    >>> push_code("my-org/nuwa-hf-code")                 # or: nuwa-hf push-code my-org/nuwa-hf-code

and a model repository points at it only when asked:

    >>> model.push_to_hub("my-org/nuwa-tiny", remote_code="my-org/nuwa-hf-code")
    >>> processor.push_to_hub("my-org/nuwa-tiny", remote_code="my-org/nuwa-hf-code")
    >>> push_model_folder("checkpoints/nuwa-tiny", "my-org/nuwa-tiny", remote_code="my-org/nuwa-hf-code")

which writes transformers' cross-repository references, ``"my-org/nuwa-hf-code--v0_1_0/modeling_nuwa.NuwaModel"``, into
config.json's ``auto_map`` and ``custom_pipelines`` and processor_config.json's ``auto_map``. transformers resolves
``repo--module.Class`` by downloading ``module.py`` (and the files it imports relatively) from that repo
(``transformers.dynamic_module_utils.get_class_from_dynamic_module``); then, without nuwa-hf,

    >>> AutoModelForSeq2SeqLM.from_pretrained("my-org/nuwa-tiny", trust_remote_code=True)
    >>> pipeline("nuwa-text-to-image", model="my-org/nuwa-tiny", trust_remote_code=True)

Versions: each push writes the code into a folder named after the installed version (``v0_1_0/``) and leaves the
other versions' folders alone, so a model folder keeps pointing at exactly the code it was saved with.

Why files are rewritten: transformers imports remote code as the modules of one folder, and follows only imports of
the form ``from .name import ...``. :func:`build_code_folder` therefore writes each module the entry points need as
one file, named after the module (``nuwa_hf/pipelines/text_to_image.py`` -> ``text_to_image.py``, a package's
``__init__.py`` -> the package's name), and rewrites the package's imports with the syntax tree (``from ...ops import
x`` -> ``from .ops import x``). An import inside a function of a module that is not published (``nuwa_hf.evaluation``,
used when a reranking scorer is given as a path) becomes an import of the installed nuwa_hf that says how to install
it. The build fails, naming the file, on anything it cannot rewrite faithfully.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

PACKAGE = "nuwa_hf"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]

# What a remote-code user loads: the model classes, the processor and the eight task pipelines.
ENTRY_MODULES = (
    "nuwa_hf.models.nuwa.configuration_nuwa", "nuwa_hf.models.nuwa.modeling_nuwa",
    "nuwa_hf.processing.processing_nuwa", "nuwa_hf.processing.image_processing_nuwa",
)
# Modules never published; an import of one inside a function asks for the package instead.
UNPUBLISHED = ("nuwa_hf.hub.code_repo", "nuwa_hf.evaluation", "nuwa_hf.training", "nuwa_hf.commands", "nuwa_hf.cli", "nuwa_hf.data.task_worlds")

CODE_REPO_README = """---
library_name: nuwa-hf
tags:
- nuwa
- nuwa-hf
- remote-code
---

# nuwa-hf remote code

The model code of [nuwa-hf](https://github.com/microsoft/NUWA) (NUWA as a transformers / diffusers model), one folder
per released version (`{folder}/` is nuwa-hf {version}), for loading NUWA model repositories with
`trust_remote_code=True` where the package is not installed. Built by `nuwa-hf push-code` from the installed package;
do not edit: the files are the package's own modules, with imports rewritten for transformers' remote-code loader.

A model repository uses it when its `config.json` `auto_map` names it, e.g.
`"AutoModelForSeq2SeqLM": "<this repo>--{folder}/modeling_nuwa.NuwaForConditionalGeneration"` (written by
`model.save_pretrained(folder, remote_code="<this repo>")`). With nuwa-hf installed (`pip install nuwa-hf`) none of
this code is downloaded: the installed classes load the model.
"""


class CodeBuildError(RuntimeError):
    """The package's sources use an import the remote-code build cannot rewrite (the message names file and line)."""


def version_folder(version: Optional[str] = None) -> str:
    """The code repository's folder of a version: ``"0.1.0"`` -> ``"v0_1_0"`` (a module path may hold no dots)."""
    if version is None:
        from .. import __version__ as version
    return "v" + re.sub(r"[^0-9A-Za-z]", "_", str(version))


def _module_file(module: str) -> tuple[Path, bool]:
    """(source file, is a package) of a module of this package."""
    path = _PACKAGE_DIR.parent.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py", True
    return path.with_suffix(".py"), False


def _flat_name(module: str) -> str:
    """``nuwa_hf.pipelines.text_to_image`` -> ``text_to_image``; a package -> its own name (``nuwa_hf.ops`` -> ``ops``)."""
    return module.rsplit(".", 1)[-1]


def _pipeline_modules() -> dict:
    """Task name -> (module, class) of the eight task pipelines, from the task table (the pipelines themselves are
    not imported: publishing reads the package, it does not run it)."""
    from ..tasks import TASKS

    return {task.name: (task.pipeline_module, task.pipeline_class) for task in TASKS}


def _target(node: ast.ImportFrom, module: str, is_package: bool) -> Optional[str]:
    """The absolute module an import names, when it is one of this package's; None for other libraries."""
    if node.level == 0:
        name = node.module or ""
        return name if name == PACKAGE or name.startswith(PACKAGE + ".") else None
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(parts) - 1:
        raise CodeBuildError(f"{module}: line {node.lineno} imports from above the package")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _unpublished(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in UNPUBLISHED)


@dataclass
class _Import:
    node: ast.ImportFrom
    target: str
    nested: bool


def _imports(module: str) -> tuple[str, list[_Import]]:
    path, is_package = _module_file(module)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    found = []
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            raise CodeBuildError(f"{path}:{node.lineno}: `import {PACKAGE}...`; use `from .x import y`")
        if not isinstance(node, ast.ImportFrom):
            continue
        target = _target(node, module, is_package)
        if target is None:
            continue
        if not node.module or node.level and _module_file(target)[1] and any(
                _module_file(f"{target}.{alias.name}")[0].is_file() and not _binds(target, alias.name)
                for alias in node.names):
            raise CodeBuildError(f"{path}:{node.lineno}: imports a submodule as a name; import from the module")
        found.append(_Import(node, target, id(node) not in top_level and not _in_module_try(tree, node)))
    return source, found


def _binds(package: str, name: str) -> bool:
    """Whether a package's ``__init__`` binds ``name`` itself (``from .x import name``), so importing it from the
    flattened ``__init__`` gives the same object."""
    path, _ = _module_file(package)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return True
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return True
    return False


def _in_module_try(tree: ast.Module, node: ast.AST) -> bool:
    """Imports inside a module-level ``try`` run at import time: they count as top level."""
    for statement in tree.body:
        if isinstance(statement, ast.Try) and any(child is node for child in ast.walk(statement)):
            return True
    return False


def _closure() -> dict:
    """Module -> its imports, for every module the entry points need (nested imports of unpublished modules aside)."""
    entries = list(ENTRY_MODULES) + [module for module, _ in _pipeline_modules().values()]
    modules, todo = {}, list(entries)
    while todo:
        module = todo.pop()
        if module in modules:
            continue
        source, imports = _imports(module)
        modules[module] = (source, imports)
        for item in imports:
            if _unpublished(item.target):
                if not item.nested:
                    raise CodeBuildError(f"{module}: line {item.node.lineno} imports {item.target} at import time, "
                                         "which is not published as remote code")
                continue
            todo.append(item.target)
    names = {}
    for module in modules:
        other = names.setdefault(_flat_name(module), module)
        if other != module:
            raise CodeBuildError(f"{module} and {other} would both be {_flat_name(module)}.py in the code repository")
    return modules


def _rewrite(module: str, source: str, imports: list[_Import]) -> str:
    lines = source.splitlines(keepends=True)
    for item in sorted(imports, key=lambda i: i.node.lineno, reverse=True):
        node = item.node
        first, last = node.lineno - 1, node.end_lineno - 1
        indent, trailing = lines[first][: node.col_offset], lines[last][node.end_col_offset:].strip()
        if indent.strip() or trailing and not trailing.startswith("#"):
            raise CodeBuildError(f"{module}: line {node.lineno}: an import must be alone on its lines")
        comment = f"  {trailing}" if trailing else ""
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        if _unpublished(item.target):
            new = (f"{indent}try:\n{indent}    from {item.target} import {names}\n"
                   f"{indent}except ImportError as error:\n{indent}    raise ImportError(\n"
                   f"{indent}        \"this needs the nuwa-hf package ({item.target} is not part of its remote code): \"\n"
                   f"{indent}        \"pip install nuwa-hf\"\n{indent}    ) from error\n")
        else:
            new = f"{indent}from .{_flat_name(item.target)} import {names}{comment}\n"
        lines[first: last + 1] = [new]
    return "".join(lines)


def build_code_folder(target: str | os.PathLike, *, version: Optional[str] = None) -> list[str]:
    """Write the remote code of the installed package into ``target/<version folder>/`` and the code repository's
    README.md into ``target``. Returns the paths written, relative to ``target``.

    Raises:
        CodeBuildError: a module's imports cannot be rewritten faithfully (named).
    """
    from .. import __version__

    version = version or __version__
    folder = version_folder(version)
    target = Path(target)
    (target / folder).mkdir(parents=True, exist_ok=True)
    written = []
    for module, (source, imports) in sorted(_closure().items()):
        origin = _module_file(module)[0].relative_to(_PACKAGE_DIR.parent).as_posix()
        text = (f"# nuwa-hf {version}: {origin}, with its package imports rewritten for remote code (nuwa-hf "
                f"push-code).\n" + _rewrite(module, source, imports))
        name = f"{folder}/{_flat_name(module)}.py"
        (target / name).write_text(text, encoding="utf-8")
        written.append(name)
    (target / "README.md").write_text(CODE_REPO_README.format(folder=folder, version=version), encoding="utf-8")
    return written + ["README.md"]


def code_references(code_repo: str, *, version: Optional[str] = None) -> dict:
    """The references a model folder writes to point at ``code_repo`` (the code of ``version``, default the installed
    one): ``{"auto_map": ..., "custom_pipelines": ..., "processor_auto_map": ..., "image_processor_auto_map": ...}``."""
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(code_repo)
    prefix = f"{code_repo}--{version_folder(version)}/"
    model = prefix + _flat_name("nuwa_hf.models.nuwa.modeling_nuwa")
    processor = prefix + _flat_name("nuwa_hf.processing.processing_nuwa") + ".NuwaProcessor"
    return {
        "auto_map": {"AutoConfig": prefix + _flat_name("nuwa_hf.models.nuwa.configuration_nuwa") + ".NuwaConfig",
                     "AutoModel": model + ".NuwaModel", "AutoModelForSeq2SeqLM": model + ".NuwaForConditionalGeneration"},
        "custom_pipelines": {
            task: {"impl": f"{prefix}{_flat_name(module)}.{cls}", "pt": ["AutoModelForSeq2SeqLM"], "tf": [],
                   "type": "multimodal"}
            for task, (module, cls) in sorted(_pipeline_modules().items())},
        "processor_auto_map": {"AutoProcessor": processor},
        "image_processor_auto_map": {
            "AutoImageProcessor": prefix + _flat_name("nuwa_hf.processing.image_processing_nuwa") + ".NuwaImageProcessor",
            "AutoProcessor": processor},
    }


def point_folder_to_code(folder: str | os.PathLike, code_repo: Optional[str], *, version: Optional[str] = None,
                         files: tuple = ("config.json", "processor_config.json")) -> list[str]:
    """Make a model folder's ``files`` (config.json: ``auto_map`` and ``custom_pipelines``; processor_config.json:
    ``auto_map``) name the classes of ``code_repo`` (the code of ``version``, default the installed one), or, with
    ``code_repo=None``, only drop every reference to code. Returns the files changed; weights, checksum manifest and
    card are not touched."""
    from ..file_io import atomic_write_json
    from ..models.nuwa.loading_nuwa import strip_code_references

    folder = Path(folder)
    changed = set(strip_code_references(folder, tuple(files) + ("tokenizer_config.json", "preprocessor_config.json")))
    references = code_references(code_repo, version=version) if code_repo else None
    for name in files if references else ():
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if name == "config.json":
            data.update(auto_map=references["auto_map"], custom_pipelines=references["custom_pipelines"])
        else:
            data["auto_map"] = references["processor_auto_map"]
            if isinstance(data.get("image_processor"), dict):
                data["image_processor"]["auto_map"] = references["image_processor_auto_map"]
        atomic_write_json(path, data)
        changed.add(name)
    return sorted(changed)


def push_code(
    repo_id: str,
    *,
    token: Optional[str | bool] = None,
    private: bool = False,
    endpoint: Optional[str] = None,
    commit_message: Optional[str] = None,
    version: Optional[str] = None,
):
    """Build the installed package's remote code (:func:`build_code_folder`) and upload it to the code repository
    ``repo_id`` (created when missing), in one commit. Other versions' folders in the repository are kept.

    Returns:
        The commit URL (a ``huggingface_hub.CommitInfo``).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import validate_repo_id

    from .transport import HubUnreachableError, check_online, transport_errors

    validate_repo_id(repo_id)
    check_online()
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="nuwa-hf-code-") as staging:
        build_code_folder(staging, version=version)
        try:
            repo_id = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True).repo_id
            return api.upload_folder(
                repo_id=repo_id, folder_path=staging, repo_type="model",
                commit_message=commit_message or f"nuwa-hf {version_folder(version)} remote code",
            )
        except transport_errors() as error:
            raise HubUnreachableError(f"Could not reach the Hub at {api.endpoint}: {error}") from error
