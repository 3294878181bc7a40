"""The Searcher API: one small base, a registry, accuracy sources that count queries, results.

A method sees the space, an accuracy source, the bound constraints and a query budget; it may call
the cost models freely (tables are measured once, look-ups are free) but every accuracy it reads
goes through `AccuracySource.query`, which counts distinct archs: the budget is the number of
archs whose accuracy a method looked at (a trained network in a benchmark table, a subnet
evaluated on a supernet). That is the budget NAS benchmarks compare methods under.

Distinct means functionally distinct, for every method alike (the protocol, not a method, owns
it): on a space with a canonical form (`CellGraph.canonical`: isomorphic cells, dead edges
masked) a read of a cell whose class was already read costs no query and returns the value
stored for the class. Where a space has no canonical form, distinct arch strings count.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from hwnas.core.capabilities import CellGraph, Chain, FeatureEncodable, is_enumerable
from hwnas.core.params import Parameters
from hwnas.core.registry import Registry
from hwnas.search.budget import check_budget
from hwnas.search.constraints import BoundConstraint

#: version of the query protocol on spaces with a canonical form (1: every distinct arch string
#: was a query; 2: one query per functional class). Runs record it; a runs folder made under
#: another version is redone, as for a method's code version (bench.engine.search).
PROTOCOL_VERSION = 2


def protocol_version(space) -> int:
    """The query protocol a search on `space` runs under (spaces without a canonical form: 1,
    unchanged)."""
    return PROTOCOL_VERSION if isinstance(space, CellGraph) else 1


def arch_key(space):
    """arch -> the protocol's identity of an arch: its functional class where the space has a
    canonical form, else its string."""
    return space.canonical if isinstance(space, CellGraph) else space.to_str


class BudgetExhausted(RuntimeError):
    """Raised by `AccuracySource.query` when a method asks for more archs than its budget."""


class AccuracySource(ABC):
    """Accuracy (percent) of archs; counts distinct archs asked for and enforces the budget.

    Archs are told apart by `key` (`arch_key`: the functional class on a cell space); the first
    arch read of a class is the one evaluated, and its value answers every later read of the
    class, free."""

    name: str = "accuracy"

    def __init__(self):
        self._cache: dict[str, float] = {}  # class key -> accuracy, in query order
        self._read: dict[str, str] = {}  # class key -> string of the arch evaluated for it
        self.budget: int | None = None

    def start(self, space, budget: int | None) -> None:
        self.space, self.budget = space, budget
        self._cache.clear()
        self._read.clear()

    def key(self, arch) -> str:
        """The protocol's identity of `arch` (`arch_key`: its class on a cell space)."""
        return arch_key(self.space)(arch)

    @property
    def queries(self) -> int:
        return len(self._cache)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def remote_cpu_seconds(self) -> float:
        """CPU seconds of answering queries outside this process so far (a supernet's evaluation
        workers, or the recorded cost of estimates read from a shared store): a search's cost
        counts them beside its own process's."""
        return 0.0

    def query(self, archs: Sequence) -> np.ndarray:
        keys = [self.key(a) for a in archs]
        new = dict.fromkeys(k for k in keys if k not in self._cache)
        if self.budget is not None and self.queries + len(new) > self.budget:
            raise BudgetExhausted(f"{len(new)} new archs asked with {self.remaining} queries left")
        if new:
            first = {}
            for k, a in zip(keys, archs, strict=True):
                if k in new and k not in first:
                    first[k] = self.space.to_str(a)
            vals = self._evaluate([self.space.from_str(first[k]) for k in new])
            for k, v in zip(new, vals, strict=True):
                self._cache[k] = float(v)
                self._read[k] = first[k]
        return np.array([self._cache[k] for k in keys])

    def read_value(self, arch) -> float | None:
        """The accuracy already read for `arch`'s class (None if it was not read); free."""
        return self._cache.get(self.key(arch))

    def read_arch(self, arch) -> str | None:
        """The string of the arch evaluated for `arch`'s class (`arch` itself or a functional
        twin read before it), None if the class was not read."""
        return self._read.get(self.key(arch))

    def read_keys(self) -> set[str]:
        """The class keys read so far (what a sampler excludes to draw only unread classes)."""
        return set(self._cache)

    def history(self) -> list[tuple[str, float]]:
        """(arch string, accuracy) of every arch evaluated so far (one per class), in query order."""
        return [(self._read[k], v) for k, v in self._cache.items()]

    def peek(self, archs: Sequence) -> np.ndarray:
        """Ground truth for reporting only (never counted, never for search decisions)."""
        return self._evaluate(list(archs))

    @abstractmethod
    def _evaluate(self, archs: list) -> np.ndarray: ...


class TableAccuracy(AccuracySource):
    """Accuracy from a benchmark table (e.g. NB201 CIFAR-10 200 epochs): an exact, known oracle."""

    def __init__(self, space, spec: str):
        super().__init__()
        from hwnas.devices.table import import_arch_table, parse_table_spec

        path, column = parse_table_spec(spec)
        if column is None:
            raise ValueError(f"accuracy table {spec!r}: give the column, as table:PATH:COLUMN")
        t = import_arch_table(path, space, [column])
        self.name = f"{column}@{path.rsplit('/', 1)[-1]}"
        self._table = dict(zip(t["arch_str"], t[column].to_numpy(np.float64), strict=True))
        self.space = space

    def _evaluate(self, archs: list) -> np.ndarray:
        out = np.empty(len(archs))
        for i, a in enumerate(archs):
            v = self._table.get(self.space.to_str(a))
            if v is None:
                raise LookupError(f"accuracy table {self.name}: no row for {self.space.to_str(a)[:80]!r}")
            out[i] = v
        return out

    def all(self) -> tuple[list[str], np.ndarray]:
        return list(self._table), np.fromiter(self._table.values(), dtype=np.float64)


class FunctionAccuracy(AccuracySource):
    """Any callable archs -> accuracy (a supernet's SubnetEvaluator, a trained predictor)."""

    def __init__(self, fn: Callable[[list], np.ndarray], name: str = "function",
                 remote_cpu: Callable[[], float] | None = None):
        super().__init__()
        self.fn, self.name, self._remote_cpu = fn, name, remote_cpu

    def remote_cpu_seconds(self) -> float:
        return float(self._remote_cpu()) if self._remote_cpu else 0.0

    def _evaluate(self, archs: list) -> np.ndarray:
        return np.asarray(self.fn(archs), dtype=np.float64)


@dataclass
class SearchResult:
    method: str
    space: str
    seed: int
    budget: int
    arch: object
    arch_str: str
    accuracy: float  # what the method's accuracy source says of the returned arch
    costs: dict[str, float]  # constraint metric -> cost of the returned arch, canonical units
    feasible: bool
    queries: int
    wall_seconds: float
    predicted_accuracy: float | None = None  # the method's own estimate, when it has one
    best_so_far: list[float] = field(default_factory=list)  # best feasible accuracy after each query
    notes: str = ""
    #: a method's own model-ranked pick beside the returned one, read or not (GCN on cell spaces:
    #: its fitted top feasible cell), and the model's prediction of it; None for other methods
    model_arch: object = None
    model_predicted: float | None = None
    #: under the uniform final-validation rule: the returned pick's place in the method's own
    #: ranking of the candidates it read (1: its own top-1 won the reads); None otherwise
    final_rank: int | None = None

    def row(self) -> dict:
        d = asdict(self)
        d.pop("arch")
        d.pop("best_so_far")
        d.pop("model_arch")
        costs = d.pop("costs")
        return {**d, **{f"cost_{k}": v for k, v in costs.items()}}


class Searcher(Parameters, ABC):
    """Subclasses implement `_search`; `__init__` only stores parameters, `get_params` returns
    them and what a search learns ends in `_` (scikit-learn style, `core.params.Parameters`)."""

    name: str = "searcher"
    #: the capabilities a space needs for the method to run on it, from `register_method(...,
    #: supports=...)`: alternatives, each a capability name of CAPABILITIES or several joined by
    #: "+" (all needed); ("any",) = every space
    supports: tuple[str, ...] = ("any",)
    #: "query" for methods whose cost is accuracy reads (random, evolution, BINAS, GCN): the base
    #: makes them spend the whole budget and return the best feasible arch they read (`_settle`)
    kind: str | None = None

    def search(self, space, accuracy: AccuracySource, constraints: Sequence[BoundConstraint],
               budget: int, seed: int = 0, final_reads: int | None = None) -> SearchResult:
        """`final_reads` (k): the board's uniform final-validation rule (`validate_ranked`,
        `_final_query_reads`); None: the method's own rule, as before the rule existed."""
        if not supports_space(self.supports, space):
            raise ValueError(f"method {self.name!r} does not support space {space.name!r}; "
                             f"it runs on {', '.join(self.supports)}")
        check_budget(budget)
        if final_reads is not None and not 0 <= int(final_reads) <= budget:
            raise ValueError(f"final_reads (k) must be between 0 and the budget ({budget}), got {final_reads}")
        self.final_reads_ = None if final_reads is None else int(final_reads)
        accuracy.start(space, budget)
        self.model_pick_ = None  # (arch, prediction), set by a method that has its own fitted pick
        self.final_rank_ = None  # set by the uniform final-validation rule
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        arch, predicted, notes = self._search(space, accuracy, list(constraints), budget, rng)
        arch = space.validate(arch)
        if hasattr(space, "in_pool") and not space.in_pool(arch):  # a pool (search/spaces/pool.py)
            arch = space.nearest(arch, rng)  # a method that decodes archs of the whole base space
            notes = "; ".join(n for n in (notes, "the method's pick lay outside the pool: "
                                          "returned the nearest member") if n)
        if self.kind == "query":
            own = (arch, predicted)  # what the method itself chose, before the contract settles it
            arch, extra = _settle(space, accuracy, list(constraints), arch, rng)
            notes = "; ".join(n for n in (notes, extra) if n)
            if self.final_reads_ is not None:
                arch, extra = self._final_query_reads(space, accuracy, list(constraints), arch, own, budget)
                notes = "; ".join(n for n in (notes, extra) if n)
        wall = time.perf_counter() - t0
        acc = float(accuracy.peek([arch])[0])
        costs = {c.constraint.metric + "@" + c.constraint.source: float(c.values([arch])[0]) for c in constraints}
        feasible = bool(all(c.feasible([arch])[0] for c in constraints))
        return SearchResult(
            method=self.name, space=space.name, seed=seed, budget=budget, arch=arch, arch_str=space.to_str(arch),
            accuracy=acc, costs=costs, feasible=feasible, queries=accuracy.queries, wall_seconds=wall,
            predicted_accuracy=predicted, best_so_far=_best_so_far(accuracy, space, constraints), notes=notes,
            model_arch=self.model_pick_ and self.model_pick_[0], model_predicted=self.model_pick_ and self.model_pick_[1],
            final_rank=self.final_rank_)

    @abstractmethod
    def _search(self, space, accuracy: AccuracySource, constraints: list[BoundConstraint], budget: int,
                rng: np.random.Generator) -> tuple[object, float | None, str]:
        """Return (arch, predicted accuracy or None, a note)."""

    # ---- the final-validation rule (DESIGN: the same k final validation reads for every method) ----
    def final_count(self, default: int) -> int:
        """How many of its ranked candidates a method reads at the end: its own `default`, or the
        board's k when `search` was given `final_reads`."""
        return default if self.final_reads_ is None else self.final_reads_

    def validate_ranked(self, accuracy: AccuracySource, ranked: Sequence, n: int) -> tuple[object, int | None, int]:
        """A one-shot method's final pick from its feasible candidates `ranked` best first by its
        own score: the first `n` are read once each and the best read wins. Under the uniform rule
        (`final_reads` = k, n = k) the method's own top-1, `ranked[0]`, is also recorded as its
        model pick (the k = 0 pick, never read for it), and k = 0 returns it unread.
        Returns (arch, index of the winner among those read or None, archs read)."""
        if self.final_reads_ is not None:
            self.model_pick_ = (ranked[0], None)
            self.final_rank_ = 1
        if n <= 0:
            return ranked[0], None, 0
        cands = list(ranked[:n])
        best = int(np.argmax(accuracy.query(cands)))
        if self.final_reads_ is not None:
            self.final_rank_ = best + 1
        return cands[best], best, len(cands)

    def _final_query_reads(self, space, accuracy: AccuracySource, constraints, arch, own, budget: int
                           ) -> tuple[object, str]:
        """The uniform rule for a query method, after its budget is spent (`_settle`): its own
        top-1 is its fitted model's pick where it has one (`model_pick_`: GCN on cells, BINAS's
        solver), else what its `_search` returned (`own`: GCN's argmax on chains; random search's
        and evolution's best read, a read being the only score they have) when feasible, else its
        best feasible read; its ranking goes on with its feasible reads, best first. Its first k are read once each on top of the
        budget (an arch already read is not read again: the source is deterministic and the
        protocol counts an arch once), the best read wins; k = 0 returns the top-1 unread."""
        k = self.final_reads_
        model = self.model_pick_
        top1, pred = arch, None
        if model is not None and model[0] is not None and feasible_mask(constraints, [model[0]])[0]:
            top1, pred = model
        elif feasible_mask(constraints, [own[0]])[0]:
            top1, pred = own
        read = accuracy.history()
        archs = [space.from_str(a) for a, _ in read]
        ok = feasible_mask(constraints, archs) if archs else np.zeros(0, dtype=bool)
        order = sorted((i for i in range(len(read)) if ok[i]), key=lambda i: -read[i][1])
        ranked, seen = [top1], {accuracy.key(top1)}
        for i in order:
            if accuracy.key(archs[i]) not in seen:
                seen.add(accuracy.key(archs[i]))
                ranked.append(archs[i])
        self.model_pick_ = (top1, pred)
        self.final_rank_ = 1
        if k == 0:
            return top1, "k = 0: the method's own top-1 pick"
        accuracy.budget = budget + k  # the final reads come on top of the search's budget
        before = accuracy.queries
        cands = ranked[:k]
        best = int(np.argmax(accuracy.query(cands)))
        self.final_rank_ = best + 1
        return cands[best], (f"final validation: {len(cands)} of its top candidates read "
                             f"({accuracy.queries - before} new), best is #{best + 1}")


def _settle(space, accuracy: AccuracySource, constraints, arch, rng) -> tuple[object, str]:
    """The query-method contract, enforced once for every such method: (1) an arch the method
    returns unread is read while the budget allows; (2) budget left over is spent on uniformly
    drawn feasible unread archs; (3) the result is never worse than the best feasible arch read
    (by the value read): if it is, or it is unread, or infeasible while a feasible arch was read,
    the best feasible read arch is returned instead."""
    notes = []
    if accuracy.read_value(arch) is None and accuracy.remaining and feasible_mask(constraints, [arch])[0]:
        accuracy.query([arch])
    if accuracy.remaining:
        extra = sample_feasible(space, constraints, rng, accuracy.remaining, exclude=accuracy.read_keys(),
                                key=accuracy.key)
        if extra:
            accuracy.query(extra)
            notes.append(f"{len(extra)} unspent queries read uniformly drawn feasible archs")
    read = accuracy.history()
    if not read:
        return arch, "; ".join(notes)
    archs = [space.from_str(k) for k, _ in read]
    ok = feasible_mask(constraints, archs)
    if not ok.any():
        return arch, "; ".join(notes)
    vals = np.where(ok, np.array([v for _, v in read]), -np.inf)
    i = int(np.argmax(vals))
    mine = accuracy.read_value(arch)
    if mine is None or mine < vals[i] or not feasible_mask(constraints, [arch])[0]:
        why = "unread" if mine is None else "worse than the best read"
        notes.append(f"the method's pick was {why}; returned the best feasible arch read")
        arch = archs[i]
    elif accuracy.read_arch(arch) != space.to_str(arch):  # a functional twin of the cell read:
        arch = space.from_str(accuracy.read_arch(arch))  # the network whose accuracy was read is returned
        notes.append("the method's pick was a twin of a cell read; returned the cell read")
    return arch, "; ".join(notes)


def _best_so_far(accuracy: AccuracySource, space, constraints) -> list[float]:
    """Best feasible accuracy seen after each query, from the source's own trace."""
    read = accuracy.history()
    if not read:
        return []
    ok = feasible_mask(constraints, [space.from_str(k) for k, _ in read])
    vals = np.where(ok, np.array([v for _, v in read]), -np.inf)
    best = np.maximum.accumulate(vals)
    return [float(v) if np.isfinite(v) else float("nan") for v in best]


def feasible_mask(constraints: Sequence[BoundConstraint], archs: Sequence) -> np.ndarray:
    ok = np.ones(len(archs), dtype=bool)
    for c in constraints:
        ok &= c.feasible(archs)
    return ok


def sample_feasible(space, constraints: Sequence[BoundConstraint], rng: np.random.Generator, n: int,
                    exclude: set[str] | None = None, max_tries: int = 200, key=None) -> list:
    """n distinct feasible archs outside `exclude`, each drawn uniformly from those not yet taken
    (sampling without replacement from the unread feasible set); fewer if the space runs dry.
    Distinct by `key` (default `space.to_str`; an accuracy source's `key` draws one arch per
    functional class, none of a class in `exclude`: the protocol's count of queries).

    The draws are rejection sampling in rounds of 4x the archs still missing (at least 16), the
    same draws and picks as ever for a seed, until the rounds have drawn half of a finite space
    (never at the budgets of the boards): then the archs still missing are drawn directly from
    the feasible archs left, without replacement. The work is linear in `n`: a round's candidates
    are drawn at once (`space.sample_draws`) and each distinct candidate's key and feasibility
    are worked out once. Before, the rounds went on until the last feasible arch was hit or 200
    rounds had passed (a random search of all 15,625 NB201 cells under a 25% latency bound drew
    200 rounds of 47,000 candidates: minutes; a scarce feasible set could come back short).
    """
    exclude = set(exclude or ())
    key = key or space.to_str
    out: list = []
    if n <= 0:
        return out
    size = int(space.size()) if is_enumerable(space) else None
    known: dict = {}  # distinct candidate -> (key, feasible); its size: the distinct archs drawn so far
    for _ in range(max_tries):
        cand = space.sample_draws(max(4 * (n - len(out)), 16), rng)
        new = [a for a in dict.fromkeys(cand) if a not in known]
        for a, ok in zip(new, feasible_mask(constraints, new) if new else (), strict=True):
            known[a] = (key(a), bool(ok))
        for a in cand:
            k, ok = known[a]
            if ok and k not in exclude:
                exclude.add(k)
                out.append(a)
                if len(out) == n:
                    return out
        if size is not None and 2 * len(known) >= size:
            rest = _feasible_outside(space, constraints, exclude, known, key)
            for i in rng.permutation(len(rest)):  # one arch per key left (twins share a key)
                if len(out) == n:
                    break
                if known[rest[i]][0] not in exclude:
                    exclude.add(known[rest[i]][0])
                    out.append(rest[i])
            return out
    return out


def _feasible_outside(space, constraints: Sequence[BoundConstraint], exclude: set[str], known: dict,
                      key=None) -> list:
    """Every feasible arch of a finite space whose key is not in `exclude` (`known`: arch -> (key,
    feasible) already worked out; completed here)."""
    key = key or space.to_str
    archs = list(space.iter_all())
    unknown = [a for a in archs if a not in known]
    for a, ok in zip(unknown, feasible_mask(constraints, unknown) if unknown else (), strict=True):
        known[a] = (key(a), bool(ok))
    return [a for a in archs if known[a][1] and known[a][0] not in exclude]


def cheapest(space, constraints: Sequence[BoundConstraint], rng: np.random.Generator, n: int = 2000):
    """The arch with the lowest cost relative to each bound (all archs of a small finite space,
    else `n` samples plus `space.smallest()` where a space has one): what a method returns,
    flagged infeasible, when no arch it could find meets the constraints."""
    if is_enumerable(space):
        archs = list(space.iter_all())
    else:
        archs = space.sample_many(n, rng) + ([space.smallest()] if isinstance(space, Chain) else [])
    if not constraints:
        return archs[0]
    ratio = np.max([c.values(archs) / c.constraint.bound for c in constraints], axis=0)
    return archs[int(np.argmin(ratio))]


# ---- registry (timm style) ----------------------------------------------------------------
_METHODS = Registry("method")


def check_choices(method: str, obj, **allowed: tuple[str, ...]) -> None:
    """One line for the first parameter of `obj` outside its allowed values."""
    for name, values in allowed.items():
        value = getattr(obj, name)
        if value not in values:
            raise ValueError(f"{method}: {name} must be {' or '.join(repr(v) for v in values)}, got {value!r}")


def register_method(name: str, **meta):
    """Class decorator; `meta` (e.g. kind="query") is kept in the registry and `kind` also on the class.
    `supports=` names the capabilities a space needs (see CAPABILITIES), never spaces: a method
    declared for a capability runs on every space that has it, a new space included."""
    for alt in meta.get("supports", ()):
        unknown = [c for c in str(alt).split("+") if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"method {name!r}: supports= takes capability names ({', '.join(CAPABILITIES)}, "
                             f"joined by '+' when all are needed), not {', '.join(map(repr, unknown))}")

    def deco(cls):
        _METHODS.add(name, cls, **meta)
        cls.name = name
        if "kind" in meta:
            cls.kind = meta["kind"]
        if "supports" in meta:
            cls.supports = tuple(meta["supports"])
        return cls
    return deco


_METHODS.plugin_adder = lambda name, obj, **meta: register_method(name, **meta)(obj)  # entry point hwnas.methods


def list_methods(**where) -> list[str]:
    """Registered method names, filtered by metadata without building a method:
    `list_methods(kind="query")`, `list_methods(supports="nb201")` (a space name or object; a
    method declared for a capability matches every space that has it)."""
    space = where.pop("supports", None)
    names = _METHODS.names(**where)
    return names if space is None else [n for n in names if method_supports(n, space)]


def method_meta(name: str) -> dict:
    """What method `name` was registered with (`supports`, `kind`)."""
    return _METHODS.meta(name)


#: what a method may require of a space (`supports=`): capability name -> test of a space
CAPABILITIES = {
    "any": lambda space: True,
    "enumerable": is_enumerable,  # `Enumerable` and within ENUMERATION_LIMIT archs
    "chain": lambda space: isinstance(space, Chain),
    "cell-graph": lambda space: isinstance(space, CellGraph),
    "feature-encodable": lambda space: isinstance(space, FeatureEncodable),
}


def supports_space(supports, space) -> bool:
    """Whether a `supports=` declaration covers `space`: some alternative whose capabilities
    ("a+b": all of them) the space has. A plain space name also matches that space (the keys of
    a per-space `version=` may name one)."""
    def has(alt: str) -> bool:
        return all(CAPABILITIES[c](space) if c in CAPABILITIES else c == space.name for c in alt.split("+"))

    return any(has(str(alt)) for alt in supports)


def method_supports(name: str, space) -> bool:
    """Whether method `name` runs on `space` (a space object or name), read from the registry."""
    if isinstance(space, str):
        from hwnas.search.spaces import create_space

        space = create_space(space)
    return supports_space(method_meta(name).get("supports", ("any",)), space)


def create_method(name: str, **params) -> Searcher:
    if name not in _METHODS:
        raise LookupError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}")
    cls = _METHODS[name]
    return cls(**cls.check_params(params, owner=name))  # a bad value: one line naming METHOD.PARAM
