"""The house rules of issue 13 ("one door"), checked on the source with the AST.

Rules (each failure names ``file:line`` and the rule):

- ``one-door``: a module under ``dfwidgets/widgets/`` or ``dfwidgets/learn/`` reads
  ``X.store`` (on anything) or ``X._name`` where ``X`` is not the object's own
  ``self`` / ``cls`` / ``super()`` (``getattr/setattr/hasattr/delattr`` with such a literal
  name count too). A Session is reached through many names (``session``, ``s``,
  ``self.session``, ``view.session``...), so the rule does not guess which value is a
  Session: every private access on another object is flagged. Three exceptions, all
  explicit: a class defined in the same module (``Panels._act_add`` in a dispatch table
  next to ``class Panels``) and an instance a class builds itself in the same function
  (``probe = cls(...)``, ``type(self)(...)``, ``C.__new__(...)`` inside class ``C``) are
  the module's own, and :data:`ALLOWED_PRIVATE` lists third-party internals with the
  reason (each entry must still be used, so the list cannot go stale).
- ``widget-imports``: a widget module imports ``dfwidgets.learn``, ``.layout``, ``.index``
  or ``.store`` (absolute or relative, at module or function level).
- ``core-imports``: a module outside ``widgets/`` imports ipywidgets, anywidget or
  ``dfwidgets.widgets``.
- ``learn-pure``: ``learn/`` imports ``dfwidgets.session`` / ``dfwidgets.store``, or has a
  function parameter named ``session``.
- ``import-cycle``: a cycle in the import graph of ``dfwidgets`` (rule below).
- ``max-lines``: a file under ``dfwidgets/`` or ``js/src/`` longer than 400 lines.

What counts as an import (all rules): ``import a.b`` and ``from a import b`` at any level of
a module (also inside functions); ``from P import name`` names the submodule ``P.name`` if
there is one, else the module ``P``'s ``__init__`` takes ``name`` from (followed through
re-exports and the root package's lazy ``_LAZY`` table), else ``P`` itself; an attribute
``dfw.Name`` on a name bound by ``import dfwidgets`` resolves the same way; so does
``importlib.import_module("literal")``. A non-literal ``import_module(name)`` (the lazy
``__getattr__`` in ``dfwidgets/__init__.py``) is not an import.

Import-cycle rule: the graph has an edge A -> B for each import in A of a module B of the
package, except (1) imports under ``if TYPE_CHECKING:`` (never run), (2) an import of a
package that contains A (e.g. ``import dfwidgets`` or ``from dfwidgets.session import
Session`` in ``dfwidgets/session/x.py``): Python has already started that ``__init__``
before A runs; what such an import really needs is the submodule the name comes from,
which the re-export resolution above turns into the edge, and (3) the implicit import of
parent packages. A strongly connected component of two or more modules is a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 400
SOURCE_SUFFIXES = (".py", ".js", ".css", ".mjs")

#: (receiver as written, private attribute) -> why it is not a Session internal.
#: (none: the Trainer's figures are plain plotly go.Figure objects sent as JSON; no third-party
#: internals are read)
ALLOWED_PRIVATE: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "dfwidgets.widgets.labeler"
    rel: str  # path shown in messages, e.g. "dfwidgets/widgets/labeler.py"
    is_package: bool
    tree: ast.Module


@dataclass(frozen=True)
class Import:
    target: str  # the dotted module the statement names
    line: int
    type_only: bool


@dataclass(frozen=True)
class Violation:
    rule: str
    rel: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"{self.rel}:{self.line}: [{self.rule}] {self.detail}"


# ----------------------------------------------------------------------- loading
def load_package(root: Path) -> dict[str, Module]:
    """Every ``*.py`` under ``root`` (a package folder), parsed, keyed by dotted name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        parts = list(rel.with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, rel.as_posix(), is_package, tree)
    return modules


def _inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, type_only: bool = False):
    """Yield (node, under TYPE_CHECKING) for every node below ``node``."""
    for child in ast.iter_child_nodes(node):
        yield child, type_only
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_only
                yield from _walk(stmt, type_only)
        else:
            yield from _walk(child, type_only)


class Graph:
    """The imports of every module of one package, resolved to module names."""

    def __init__(self, modules: dict[str, Module]):
        self.modules = modules
        self.root = min(modules, key=len)
        self._exports: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.imports = {name: self._imports_of(mod) for name, mod in modules.items()}

    # name -> (module it comes from, name there or None for "the module itself")
    def exports(self, package: str) -> dict[str, tuple[str, str | None]]:
        if package not in self._exports:
            self._exports[package] = out = {}
            mod = self.modules[package]
            for stmt in mod.tree.body:
                if isinstance(stmt, ast.ImportFrom):
                    base = self._base(mod, stmt)
                    for alias in stmt.names:
                        out[alias.asname or alias.name] = (base, alias.name)
                elif isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "_LAZY" for t in stmt.targets):
                    value = ast.literal_eval(stmt.value) if isinstance(stmt.value, ast.Dict) else {}
                    for key, target in value.items():
                        out.setdefault(key, (target, None))
        return self._exports[package]

    def resolve(self, module: str, name: str | None, depth: int = 0) -> str:
        """The module that ``from module import name`` really reaches."""
        if name is None or depth > 10:
            return module
        if f"{module}.{name}" in self.modules:
            return f"{module}.{name}"
        if module in self.modules and self.modules[module].is_package:
            source = self.exports(module).get(name)
            if source is not None:
                return self.resolve(source[0], source[1], depth + 1)
        return module

    @staticmethod
    def _base(mod: Module, stmt: ast.ImportFrom) -> str:
        if not stmt.level:
            return stmt.module or ""
        parts = mod.name.split(".")
        if not mod.is_package:
            parts.pop()
        parts = parts[: len(parts) - (stmt.level - 1)]
        return ".".join(parts + ([stmt.module] if stmt.module else []))

    def _imports_of(self, mod: Module) -> list[Import]:
        out: list[Import] = []
        root_aliases = set()
        for node, type_only in _walk(mod.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    out.append(Import(alias.name, node.lineno, type_only))
                    if alias.name == self.root and alias.asname:
                        root_aliases.add(alias.asname)
                    elif alias.name.split(".")[0] == self.root and not alias.asname:
                        root_aliases.add(self.root)
            elif isinstance(node, ast.ImportFrom):
                base = self._base(mod, node)
                for alias in node.names:
                    name = None if alias.name == "*" else alias.name
                    out.append(Import(self.resolve(base, name), node.lineno, type_only))
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                  and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                                  "__import__")):
                out.append(Import(node.args[0].value, node.lineno, type_only))
        for node, type_only in _walk(mod.tree):  # dfw.Labeler, dfw.learn.models ...
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in root_aliases):
                target = self.resolve(self.root, node.attr)
                if target != self.root:
                    out.append(Import(target, node.lineno, type_only))
        return out


# ------------------------------------------------------------------------- rules
def check_imports(graph: Graph) -> list[Violation]:
    """widget-imports, core-imports and learn-pure (imports only)."""
    root = graph.root
    widgets, learn = f"{root}.widgets", f"{root}.learn"
    banned = {
        "widget-imports": (widgets, [f"{root}.{m}" for m in ("learn", "layout", "index", "store")]),
        "learn-pure": (learn, [f"{root}.session", f"{root}.store"]),
    }
    out = []
    for name, imports in graph.imports.items():
        rel = graph.modules[name].rel
        for imp in imports:
            for rule, (layer, targets) in banned.items():
                if _inside(name, layer) and any(_inside(imp.target, t) for t in targets):
                    out.append(Violation(rule, rel, imp.line, f"imports {imp.target}"))
            if not _inside(name, widgets) and (
                    imp.target.split(".")[0] in ("ipywidgets", "anywidget")
                    or _inside(imp.target, widgets)):
                out.append(Violation("core-imports", rel, imp.line, f"imports {imp.target}"))
    return out


def check_learn_signatures(graph: Graph) -> list[Violation]:
    """learn-pure: no function in learn/ takes a ``session`` argument."""
    out = []
    for name, mod in graph.modules.items():
        if not _inside(name, f"{graph.root}.learn"):
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    if arg.arg == "session":
                        out.append(Violation("learn-pure", mod.rel, node.lineno,
                                             f"{node.name}() takes a session argument"))
    return out


def _own_instances(func: ast.AST, class_name: str | None) -> set[str]:
    """Local names bound to an instance the enclosing class builds itself."""
    if class_name is None:
        return set()
    makers = {"cls", class_name, "type(self)", "type(cls)"}
    own = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func_text = ast.unparse(node.value.func)
            if func_text in makers or func_text.endswith(".__new__"):
                own.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return own


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def check_one_door(graph: Graph, used_allowances: set | None = None) -> list[Violation]:
    """one-door: no ``.store`` and no private attribute of another object in widgets/learn."""
    out = []
    layers = (f"{graph.root}.widgets", f"{graph.root}.learn")
    for name, mod in graph.modules.items():
        if any(_inside(name, layer) for layer in layers):
            own_classes = {n.name for n in ast.walk(mod.tree) if isinstance(n, ast.ClassDef)}
            _scan(mod.tree, mod.rel, None, own_classes, out, used_allowances)
    return sorted(set(out), key=lambda v: (v.rel, v.line, v.detail))


def _scan(node, rel, class_name, own, out, used) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            _scan(child, rel, child.name, own, out, used)
            continue
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            _scan(child, rel, class_name, own | _own_instances(child, class_name), out, used)
            continue
        attr = receiver = None
        if isinstance(child, ast.Attribute):
            attr, receiver = child.attr, child.value
        elif (isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
              and child.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(child.args) >= 2 and isinstance(child.args[1], ast.Constant)
              and isinstance(child.args[1].value, str)):
            attr, receiver = child.args[1].value, child.args[0]
        if attr is not None:
            text = ast.unparse(receiver)
            if attr == "store":
                out.append(Violation("one-door", rel, child.lineno, f"{text}.store"))
            elif _private(attr) and text not in {"self", "cls", "super()", *own}:
                if (text, attr) in ALLOWED_PRIVATE:
                    if used is not None:
                        used.add((text, attr))
                else:
                    out.append(Violation("one-door", rel, child.lineno,
                                         f"{text}.{attr}: private attribute of another object"))
        _scan(child, rel, class_name, own, out, used)


def find_cycles(graph: Graph) -> list[Violation]:
    """import-cycle: every strongly connected component of 2+ modules, with its edges."""
    edges: dict[str, dict[str, int]] = {name: {} for name in graph.modules}
    for name, imports in graph.imports.items():
        for imp in imports:
            target = imp.target
            if imp.type_only or target not in graph.modules or target == name:
                continue
            if graph.modules[target].is_package and _inside(name, target):
                continue  # a package that contains the importer (rule (2) above)
            edges[name].setdefault(target, imp.line)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for component in components:
        members = set(component)
        links = [f"{graph.modules[a].rel}:{line} -> {b}"
                 for a in component for b, line in sorted(edges[a].items()) if b in members]
        first = component[0]
        out.append(Violation("import-cycle", graph.modules[first].rel, edges[first][
            next(b for b in sorted(edges[first]) if b in members)],
            f"cycle among {', '.join(component)}: " + "; ".join(links)))
    return out


def long_files(*folders: Path, base: Path, limit: int = MAX_LINES) -> list[Violation]:
    """max-lines: source files longer than ``limit`` lines (build output skipped)."""
    out = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            # dfwidgets/static/ holds the esbuild bundles of js/src (git-ignored build output)
            if path.suffix not in SOURCE_SUFFIXES or "static" in path.relative_to(folder).parts:
                continue
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > limit:
                out.append(Violation("max-lines", path.relative_to(base).as_posix(), n,
                                     f"{n} lines > {limit}"))
    return out


def violations(root: Path) -> dict[str, list[Violation]]:
    """Every rule's violations for the package folder ``root``."""
    graph = Graph(load_package(root))
    found = check_imports(graph) + check_learn_signatures(graph) + check_one_door(graph)
    found = sorted(set(found), key=lambda v: (v.rel, v.line, v.detail)) + find_cycles(graph)
    rules = ("one-door", "widget-imports", "core-imports", "learn-pure", "import-cycle")
    return {rule: [v for v in found if v.rule == rule] for rule in rules}


# ------------------------------------------------------------ the real package
@pytest.fixture(scope="module")
def found() -> dict[str, list[Violation]]:
    return violations(REPO / "dfwidgets")


@pytest.mark.parametrize("rule", ["one-door", "widget-imports", "core-imports", "learn-pure",
                                  "import-cycle"])
def test_architecture_rule_holds(found, rule):
    bad = found[rule]
    assert not bad, f"{len(bad)} violation(s) of {rule}:\n" + "\n".join(map(str, bad))


def test_checker_sees_the_real_package():
    """The rules above must not pass because nothing was scanned."""
    graph = Graph(load_package(REPO / "dfwidgets"))
    for layer, least in (("dfwidgets.widgets.", 4), ("dfwidgets.learn.", 8),
                         ("dfwidgets.session.", 2)):
        assert sum(name.startswith(layer) for name in graph.modules) >= least, layer
    internal = [i for imports in graph.imports.values() for i in imports
                if i.target in graph.modules]
    assert len(internal) >= 50, f"only {len(internal)} imports inside dfwidgets were found"


def test_allowed_private_entries_are_all_still_needed():
    used: set = set()
    check_one_door(Graph(load_package(REPO / "dfwidgets")), used)
    stale = sorted(set(ALLOWED_PRIVATE) - used)
    assert not stale, f"ALLOWED_PRIVATE entries no longer used, remove them: {stale}"


def test_no_source_file_is_longer_than_400_lines():
    bad = long_files(REPO / "dfwidgets", REPO / "js" / "src", base=REPO)
    assert not bad, "files over the limit:\n" + "\n".join(map(str, bad))


# ------------------------------------------------------- the checker itself
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "dfwidgets"
    base = {"__init__.py": "", "widgets/__init__.py": "", "learn/__init__.py": "",
            "session/__init__.py": "from .session import Session\n",
            "session/session.py": "class Session:\n    pass\n",
            "store.py": "", "layout.py": "", "index.py": "", "learn/models.py": ""}
    for rel, text in {**base, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


BAD = [
    ("widget-imports", "widgets/view.py", "from .. import learn\n"),
    ("widget-imports", "widgets/view.py", "from ..learn.models import fit\n"),
    ("widget-imports", "widgets/view.py", "def f():\n    import dfwidgets.layout\n"),
    ("widget-imports", "widgets/view.py", "from dfwidgets import store\n"),
    ("widget-imports", "widgets/view.py",
     "import dfwidgets as dfw\n\ndef f():\n    return dfw.learn.models\n"),
    ("one-door", "widgets/view.py", "def f(session):\n    return session._x\n"),
    ("one-door", "widgets/view.py",
     "class V:\n    def f(self):\n        return self.session._check_indices([1])\n"),
    ("one-door", "widgets/view.py", "def f(s):\n    return s.store.get_meta('k')\n"),
    ("one-door", "learn/models.py", "def f(s):\n    return getattr(s, '_embedder', None)\n"),
    ("one-door", "widgets/view.py", "from .base import Base\nhidden = Base._hidden\n"),
    ("one-door", "learn/models.py", "def f(view):\n    return view.session.store\n"),
    ("learn-pure", "learn/models.py", "def f(x, *, session=None):\n    return x\n"),
    ("learn-pure", "learn/models.py", "from ..session import Session\n"),
    ("learn-pure", "learn/models.py", "def f():\n    from dfwidgets import store\n"),
    ("core-imports", "layout.py", "def f():\n    import ipywidgets\n"),
    ("core-imports", "session/session.py", "from ..widgets import view\n"),
    ("core-imports", "index.py", "import anywidget\n"),
]


@pytest.mark.parametrize("rule, rel, text", BAD)
def test_checker_flags(tmp_path, rule, rel, text):
    found = violations(_package(tmp_path, {rel: text}))
    assert [v.rel for v in found[rule]] == [f"dfwidgets/{rel}"], found


CYCLES = [
    {"a.py": "from . import b\n", "b.py": "from .a import f\n"},
    {"a.py": "import dfwidgets.b\n", "b.py": "def f():\n    from dfwidgets import a\n"},
    {"session/part.py": "from dfwidgets.session import Session\n",
     "session/session.py": "from .part import X\n\nclass Session:\n    pass\n"},
    {"a.py": "from dfwidgets import Thing\n", "b.py": "import dfwidgets.a\n",
     "__init__.py": "_LAZY = {'Thing': 'dfwidgets.b'}\n"},
]


@pytest.mark.parametrize("files", CYCLES)
def test_checker_finds_cycles(tmp_path, files):
    found = violations(_package(tmp_path, files))["import-cycle"]
    assert len(found) == 1, found
    assert "dfwidgets/" in str(found[0]) and ":" in str(found[0])


CLEAN = [
    {"widgets/view.py": (
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
        "from ..thumbs import encode\nif TYPE_CHECKING:\n    from ..session import Session\n"
        "class V(Base):\n    def f(self):\n        self._x = 1\n"
        "        return super()._y, type(self).__name__, self.session.labels\n"
        "    @classmethod\n    def load(cls):\n        out = cls()\n        out._state = 1\n"
        "        return cls._registry, out\n"
        "ACTIONS = {'f': V._act}\n"), "thumbs.py": ""},
    {"session/part.py": "import dfwidgets\nimport dfwidgets.session\n",
     "session/session.py": "from . import part\nclass Session:\n    pass\n"},
    {"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
     "b.py": "from . import a\n",
     "__init__.py": "import importlib\n_LAZY = {'A': 'dfwidgets.a'}\n"
                    "def __getattr__(name):\n    return importlib.import_module(_LAZY[name])\n"},
]


@pytest.mark.parametrize("files", CLEAN)
def test_checker_passes_clean_modules(tmp_path, files):
    found = violations(_package(tmp_path, files))
    assert {rule: [str(v) for v in bad] for rule, bad in found.items() if bad} == {}


def test_checker_flags_long_files(tmp_path):
    (tmp_path / "pkg" / "static").mkdir(parents=True)
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "pkg" / "long.js").write_text("x;\n" * (MAX_LINES + 1))
    (tmp_path / "pkg" / "static" / "bundle.js").write_text("x;\n" * 1000)
    found = long_files(tmp_path / "pkg", base=tmp_path)
    assert [str(v) for v in found] == ["pkg/long.js:401: [max-lines] 401 lines > 400"]
