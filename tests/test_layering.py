"""Dependencies point one way: cpm <- dataflow <- eval <- engine (<- scripts, tests); tests share tests/helpers.py.

``python tests/test_layering.py`` prints the package import graph (every import statement counts, those inside
functions included) and the modules behind each edge.
"""
import ast
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The layers, base first: each package may import only those before it.
LAYERS = ("cpm", "dataflow", "eval", "engine")


def module_imports():
    """{module: set of first-party modules it imports}, from the source of every module of LAYERS."""
    graph = {}
    for package in LAYERS:
        folder = os.path.join(ROOT, package)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            if not name.endswith(".py"):
                continue
            module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
            with open(os.path.join(ROOT, package, name)) as f:
                tree = ast.parse(f.read())
            found = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                # `from cpm import names` imports the module cpm.names; `from cpm.x import f` the module cpm.x
                found |= {n for n in names if n.split(".")[0] in LAYERS and _is_module(n)}
            graph[module] = found - {module}
    return graph


def _is_module(dotted):
    parts = dotted.split(".")
    path = os.path.join(ROOT, *parts)
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def package_edges(graph):
    """{(importing package, imported package): [modules that import it]} between different packages."""
    edges = collections.defaultdict(set)
    for module, imported in graph.items():
        for other in imported:
            a, b = module.split(".")[0], other.split(".")[0]
            if a != b:
                edges[a, b].add(module)
    return {edge: sorted(modules) for edge, modules in edges.items()}


def cycles(graph):
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_packages_import_only_the_layers_below_them():
    upward = {edge: modules for edge, modules in package_edges(module_imports()).items()
              if LAYERS.index(edge[1]) > LAYERS.index(edge[0])}
    assert not upward, f"imports against the layering {' <- '.join(LAYERS)}: {upward}"


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(module_imports()) == []


def test_tests_import_helpers_not_conftest_or_each_other():
    tests = os.path.join(ROOT, "tests")
    offenders = []
    for name in sorted(os.listdir(tests)):
        if name.endswith(".py"):
            with open(os.path.join(tests, name)) as f:
                for node in ast.walk(ast.parse(f.read())):
                    if isinstance(node, ast.ImportFrom) and node.module and (
                            node.module.split(".")[-1] == "conftest" or node.module.startswith("tests.test_")):
                        offenders.append(f"{name}: {node.module}")
    assert offenders == []


def test_the_checker_sees_an_upward_import_and_a_cycle():
    graph = {"cpm.a": {"engine.b"}, "engine.b": {"cpm.a"}, "cpm.c": set()}
    assert ("cpm", "engine") in package_edges(graph)
    assert cycles(graph) == [["cpm.a", "engine.b"]]


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    edges = package_edges(module_imports())
    for (a, b), modules in sorted(edges.items(), key=lambda e: (LAYERS.index(e[0][0]), LAYERS.index(e[0][1]))):
        direction = "" if LAYERS.index(b) < LAYERS.index(a) else "   <-- against the layering"
        print(f"{a} -> {b}: {', '.join(sorted(modules))}{direction}")
    print("module cycles:", cycles(module_imports()) or "none")
