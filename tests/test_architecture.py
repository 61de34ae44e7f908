"""Architecture rules (docs/design.md): light imports, no import circle (type-only imports count), short
functions, a public API per package, no private attributes of other libraries outside one wrapper, one model
registry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mmt_tune", "analysis")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (type-only imports never run: a
    result type named in a figure function's hints is not an import of the module that draws it)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
        ):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its text (top level, inside a function, and with
    ``type_only`` under ``if TYPE_CHECKING:``: a result type named in hints ties the modules as much)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree) if type_only else _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
                    base = base.strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    graph = import_graph()
    assert "mmt_tune.train" in graph and "mmt_tune.config" in graph["mmt_tune.train"], (
        "the walker sees imports"
    )
    assert cycles(graph) == []


def test_the_walker_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    code = "import x\nif TYPE_CHECKING:\n    import y\nelse:\n    import z\ndef f():\n    import w\n"
    seen = {a.name for n in _runtime_nodes(ast.parse(code)) if isinstance(n, ast.Import) for a in n.names}
    assert seen == {"x", "z", "w"}


def test_spaces_and_analysis_need_neither_torch_nor_ray(tmp_path):
    """Reading a search space and analysing a study's tables must work where torch or Ray is absent
    (a laptop with the results folder): nothing on those paths may import them."""
    code = """
import sys
import mmt_tune.analysis.importance, mmt_tune.analysis.metrics, mmt_tune.analysis.report, mmt_tune.analysis.plots, mmt_tune.analysis.synthetic
import mmt_tune.spaces, mmt_tune.config, mmt_tune.dashboard
from mmt_tune.analysis.results import read_space
from mmt_tune.spaces import load_space, resolve_space
space = load_space("paper")
read_space(resolve_space("paper"))
assert len(space.configurations) > 10
heavy = sorted(m for m in ("torch", "ray") if m in sys.modules)
print("heavy:", heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout


#: Modules allowed above MAX_LINES, with the reason.
LONG_MODULES = {
    "mmt_tune/data/synth.py": "one generator: the phantom's config, its voxels and the cohort writer",
}
MAX_LINES = 400


def test_no_module_is_a_wall():
    for path in _modules().values():
        lines = len(path.read_text().splitlines())
        relative = str(path.relative_to(REPO))
        assert lines <= MAX_LINES or relative in LONG_MODULES, f"{relative}: {lines} lines"


def unannotated(tree: ast.AST) -> list[str]:
    """Public functions and methods (not nested in a function) lacking an argument or return annotation."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if child.name.startswith("_") and child.name != "__init__":
                    continue
                arguments = child.args.args + child.args.kwonlyargs + child.args.posonlyargs
                bare = [a.arg for a in arguments if a.annotation is None and a.arg not in ("self", "cls")]
                bare += [
                    f"*{a.arg}" for a in (child.args.vararg, child.args.kwarg) if a and a.annotation is None
                ]
                if bare or (child.returns is None and child.name != "__init__"):
                    found.append(f"{prefix}{child.name}")

    visit(tree, "")
    return found


def test_every_public_function_has_type_hints():
    missing = []
    for path in _modules().values():
        missing += [f"{path.relative_to(REPO)}: {name}" for name in unannotated(ast.parse(path.read_text()))]
    assert missing == []
    assert unannotated(
        ast.parse("def f(x: int):\n    pass\nclass A:\n    def g(self, y) -> None: ...\n")
    ) == [
        "f",
        "A.g",
    ]


#: The longest a function may be (lines, decorators excluded): a reader sees one on a screen or two.
MAX_FUNCTION_LINES = 80


def long_functions(tree: ast.AST) -> list[tuple[str, int]]:
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_function_is_longer_than_a_screen_or_two():
    found = [f"{path.relative_to(REPO)}: {name} ({n} lines)" for path in _modules().values()
             for name, n in long_functions(ast.parse(path.read_text()))]  # fmt: skip
    assert found == []
    assert long_functions(ast.parse("def f():\n" + "    x = 1\n" * 80)) == [("f", 81)]


def test_every_package_states_its_public_api():
    """Each package's ``__init__`` lists what it offers in ``__all__``, and every name listed exists."""
    import importlib

    for name, path in _modules().items():
        if path.name != "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        listed = [
            n
            for n in tree.body
            if (isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets))
            or (isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "__all__")
        ]
        assert listed, f"{name}: no __all__"
        module = importlib.import_module(name)
        for public in module.__all__:
            here = path.parent
            exists = hasattr(module, public) or (here / f"{public}.py").is_file() or (here / public).is_dir()
            assert exists, f"{name}.__all__ names {public}, which it lacks"


#: The one module that reads private attributes of other libraries (each with its reason).
PRIVATE_ACCESS = "mmt_tune/_internals.py"


def private_reads(tree: ast.AST) -> list[str]:
    """``x._name`` where ``x`` is not ``self``, ``cls`` or ``super()`` (dunders are public protocol)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super":
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_private_attribute_of_another_object_is_read_outside_one_wrapper():
    found = []
    for path in _modules().values():
        if str(path.relative_to(REPO)) != PRIVATE_ACCESS:
            found += [f"{path.relative_to(REPO)}:{r}" for r in private_reads(ast.parse(path.read_text()))]
    assert found == []
    assert private_reads(ast.parse("a._b\nself._c\nsuper()._d\nx.__len__")) == ["1: a._b"]


def test_the_private_attributes_we_read_still_exist():
    """Fails when a release of Ray, Optuna or wandb-workspaces renames what mmt_tune/_internals.py reads."""
    import optuna
    import wandb_workspaces.workspaces as ws
    from ray.tune.schedulers import AsyncHyperBandScheduler
    from ray.tune.search.optuna import OptunaSearch

    from mmt_tune import _internals

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max")
    search.suggest("t1")
    assert isinstance(_internals.optuna_study(search), optuna.Study)
    assert _internals.asked_trial_numbers(search) == {0}
    assert _internals.asha_stopped(AsyncHyperBandScheduler(metric="m", mode="max")) == 0
    model = _internals.workspace_model(ws.Workspace(entity="e", project="p"))
    assert "spec" in model.model_dump(by_alias=True, exclude_none=True)


def test_no_module_re_exports_another_s_names():
    """A name is imported from the module that defines it: no ``noqa: F401`` re-exports outside a package's
    ``__init__`` (whose ``__all__`` is its public API)."""
    found = [
        f"{path.relative_to(REPO)}"
        for path in _modules().values()
        if path.name != "__init__.py" and "F401" in path.read_text()
    ]
    assert found == []


#: Test files at the top of tests/: the rules above, the invariances every stage's numbers rest on, the
#: installed package; the others at the top test a top-level module of the same name.
CROSS_CUTTING_TESTS = {"test_architecture.py", "test_guarantees.py", "test_packaging.py"}


def test_the_tests_mirror_the_package_tree():
    """tests/<package>/ for mmt_tune/<package>/, tests/test_<module>.py for a top-level module, end-to-end
    scenarios in tests/e2e/."""
    misplaced = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        parts = path.relative_to(REPO / "tests").parts
        if len(parts) == 1:
            module = parts[0].removeprefix("test_").removesuffix(".py")
            if parts[0] not in CROSS_CUTTING_TESTS and not (REPO / "mmt_tune" / f"{module}.py").is_file():
                misplaced.append(str(path.relative_to(REPO)))
        elif parts[0] != "e2e" and not (REPO / "mmt_tune" / parts[0] / "__init__.py").is_file():
            misplaced.append(str(path.relative_to(REPO)))
    assert misplaced == []


def test_every_planted_bug_of_the_mutation_check_still_finds_its_snippet():
    """scripts/mutation_check.py plants each bug by replacing one snippet that must occur exactly once: a
    refactoring that moves one fails here, not silently in the next mutation run."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import mutation_check
    finally:
        sys.path.pop(0)
    for number, mutant in enumerate(mutation_check.MUTANTS, 1):
        count = (REPO / mutant.path).read_text().count(mutant.original)
        assert count == 1, (
            f"mutant {number} ({mutant.what}): its snippet occurs {count} times in {mutant.path}"
        )
        for test in mutant.tests:
            if test.startswith("tests/"):
                assert (REPO / test.split("::")[0]).is_file(), f"mutant {number}: no {test}"
