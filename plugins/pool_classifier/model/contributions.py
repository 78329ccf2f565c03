"""Per-feature contributions of a tree model to its raw output, exact for the model: the tree-path
decomposition (Saabas), computed in the scoring batch for every scored address.

Every node of a tree gets an expected value: the mean of the tree's output over the training
samples that reached it (the leaves' values weighted by those samples: for a random forest the
weights it grew on, bootstrap draws × class weights, as its own node values are; for the gradient
boosting the sample counts). A row's path from the root to its leaf telescopes:
leaf = E[root] + Σ (E[child] − E[node]), and each step is credited to the feature the node splits
on. Summed over the trees (and averaged, for the forest):

    raw output = bias + Σ_features contribution        (to rounding, ~1e-15)

with bias = the model's expected raw output (the forest: mean of the roots; the boosting: its
baseline + the sum of the roots). The raw output is what the trees add up:

* `RandomForestClassifier`: the probability of the pool class, `predict_proba[:, 1]` (= the score);
* `HistGradientBoostingClassifier`: the log-odds, `decision_function` (score = 1 / (1 + e^−raw)).

Why this decomposition and not TreeSHAP: both are exact in this sense (local accuracy); TreeSHAP
costs O(leaves × depth²) per tree and row, which on the fully grown baseline forest (thousands
of leaves, depth 30+) is thousands of times a prediction; the path decomposition costs what the
prediction costs (one root-to-leaf walk per tree, then one table row per tree), and routes rows
with scikit-learn's own compiled traversal, so rows take the model's own branches (the raw output
of the same walk equals the model's to the bit). Its known bias: it credits features split near
the leaves more than SHAP would (it is not consistent in SHAP's sense).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RAW_OUTPUT_KINDS = {
    "RandomForestClassifier": "probability",
    "HistGradientBoostingClassifier": "log-odds",
}


class ContributionError(TypeError):
    """A model this module cannot decompose (another kind, categorical splits, several outputs)."""


def raw_output_kind(estimator: str) -> str:
    if estimator not in RAW_OUTPUT_KINDS:
        raise ContributionError(f"no contributions for a {estimator}; known models: {sorted(RAW_OUTPUT_KINDS)}")
    return RAW_OUTPUT_KINDS[estimator]


def _expectations(left, right, leaf_value, weight) -> np.ndarray:
    """Expected value of every node: its leaves' values weighted by the training samples.

    Children are numbered after their parent in scikit-learn's trees, so one pass from the
    last node back computes every node from its children.
    """
    n = len(left)
    expected = np.asarray(leaf_value, dtype=np.float64).copy()
    weight = np.asarray(weight, dtype=np.float64)
    for node in range(n - 1, -1, -1):
        lo, hi = left[node], right[node]
        if lo < 0:
            continue
        if lo <= node or hi <= node:
            raise ContributionError(f"tree node {node} has a child numbered before it; cannot decompose")
        total = weight[lo] + weight[hi]
        expected[node] = (weight[lo] * expected[lo] + weight[hi] * expected[hi]) / total if total > 0 else \
            (expected[lo] + expected[hi]) / 2
    return expected


def _parents(left, right) -> np.ndarray:
    parent = np.full(len(left), -1, dtype=np.int64)
    inner = np.flatnonzero(left >= 0)
    parent[left[inner]] = inner
    parent[right[inner]] = inner
    return parent


def _leaf_paths(left, right, feature, expected, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf, its path's steps summed per feature (leaves × features), and each node's row in
    that table (-1 for an inner node). Built level by level: a child's row is its parent's plus
    its own step, credited to the feature its parent splits on."""
    paths = np.zeros((len(left), n_features))
    parent = _parents(left, right)
    level = np.array([0])
    while len(level):
        inner = level[left[level] >= 0]
        kids = np.concatenate([left[inner], right[inner]])
        up = parent[kids]
        paths[kids] = paths[up]
        paths[kids, feature[up]] += expected[kids] - expected[up]
        level = kids
    leaves = np.flatnonzero(left < 0)
    row = np.full(len(left), -1, dtype=np.int64)
    row[leaves] = np.arange(len(leaves))
    return paths[leaves], row


@dataclass
class Explainer:
    """The decomposition of one fitted model; `contributions(x)` for a feature matrix."""

    model: object
    features: list[str]
    kind: str  # what the raw output is: "probability" or "log-odds"
    bias: float
    # Per tree: its leaves' path steps (leaves × features, already divided by the forest's size),
    # the leaf row of each node, and (boosting) the tree's predictor with its leaves numbered.
    _tables: list = field(repr=False, default_factory=list)
    _rows: list = field(repr=False, default_factory=list)
    _leaf_finders: list = field(repr=False, default_factory=list)
    _leaf_values: list = field(repr=False, default_factory=list)  # per tree: each node's value (its output at a leaf)

    def raw_output(self, x: np.ndarray) -> np.ndarray:
        """The model's raw output, from the model itself (not from the decomposition)."""
        from threadpoolctl import threadpool_limits

        if len(x) == 0:
            return np.zeros(0)
        with threadpool_limits(1):
            if self.kind == "probability":
                return self.model.predict_proba(x)[:, 1]
            return self.model.decision_function(x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """rows × features: each feature's share of the raw output above the bias."""
        return self.explain(x)[1]

    def explain(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw output, contributions rows × features) from one walk of each tree.

        Each tree's leaf per row comes from scikit-learn's compiled traversal (the forest's
        `apply`, which casts rows to float32 as its predict does; the boosting's predictor with
        its leaves numbered), so rows take the model's own branches. The raw output adds the
        leaves' values in the model's own order and operations (the forest: Σ then ÷ trees; the
        boosting: baseline, then + each tree), so it equals predict_proba / decision_function to
        the bit (tested); the leaves' path steps are added tree by tree (the same sums for a row
        in any batch).
        """
        from threadpoolctl import threadpool_limits

        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.zeros((len(x), len(self.features)))
        raw = np.zeros(len(x))
        if len(x) == 0:
            return raw, out
        if self.kind == "probability":
            with threadpool_limits(1):
                leaves = self.model.apply(x)
            for t, (table, row, value) in enumerate(zip(self._tables, self._rows, self._leaf_values)):
                node = leaves[:, t]
                raw += value[node]
                out += table[row[node]]
            return raw / len(self._tables), out
        known_cats, f_idx_map = self.model._bin_mapper.make_known_categories_bitsets()
        raw += self.model._baseline_prediction.ravel()[0]
        for finder, table, row, value in zip(self._leaf_finders, self._tables, self._rows, self._leaf_values):
            node = finder.predict(x, known_cats, f_idx_map, 1).astype(np.int64)
            raw += value[node]
            out += table[row[node]]
        return raw, out


def explainer(model, features) -> Explainer:
    """The decomposition of a fitted RandomForestClassifier or HistGradientBoostingClassifier."""
    name = type(model).__name__
    kind = raw_output_kind(name)
    features = list(features)
    if getattr(model, "n_features_in_", len(features)) != len(features):
        raise ContributionError(f"the model has {model.n_features_in_} features, the metadata {len(features)}")
    if name == "RandomForestClassifier":
        return _forest_explainer(model, features, kind)
    return _boosting_explainer(model, features, kind)


def _forest_explainer(model, features: list[str], kind: str) -> Explainer:
    if len(model.classes_) != 2:
        raise ContributionError(f"a forest of {len(model.classes_)} classes; the pool model has 2")
    n_trees = len(model.estimators_)
    tables, rows, values, roots = [], [], [], []
    for tree in model.estimators_:
        t = tree.tree_
        left, right = t.children_left.astype(np.int64), t.children_right.astype(np.int64)
        # What predict_proba gives at a leaf: the class-1 fraction, as the tree stores it.
        leaf_value = np.ascontiguousarray(t.value[:, 0, 1])
        expected = _expectations(left, right, leaf_value, t.weighted_n_node_samples)
        table, row = _leaf_paths(left, right, np.maximum(t.feature, 0).astype(np.int64), expected, len(features))
        tables.append(table / n_trees)
        rows.append(row)
        values.append(leaf_value)
        roots.append(expected[0])
    return Explainer(model, features, kind, float(np.sum(roots) / n_trees), tables, rows, _leaf_values=values)


def _boosting_explainer(model, features: list[str], kind: str) -> Explainer:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    if model.n_trees_per_iteration_ != 1:
        raise ContributionError(f"a boosting of {model.n_trees_per_iteration_} trees per iteration; "
                                "the pool model is binary (1)")
    tables, rows, finders, values = [], [], [], []
    bias = float(np.asarray(model._baseline_prediction).ravel()[0])
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ContributionError("a boosting with categorical splits; the pool model has none")
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        expected = _expectations(left, right, nodes["value"], nodes["count"])
        feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64)
        table, row = _leaf_paths(left, right, feature, expected, len(features))
        numbered = nodes.copy()
        numbered["value"] = np.arange(len(nodes), dtype=np.float64)  # the node's number, exact in a double
        finders.append(TreePredictor(numbered, predictor.binned_left_cat_bitsets, predictor.raw_left_cat_bitsets))
        tables.append(table)
        rows.append(row)
        values.append(np.asarray(nodes["value"], dtype=np.float64))
        bias += expected[0]
    return Explainer(model, features, kind, bias, tables, rows, finders, values)


def top_k(contributions: np.ndarray, k: int) -> np.ndarray:
    """rows × min(k, features): the feature positions of the k largest |contribution|, largest first
    (ties: the feature listed first)."""
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")
    return order[:, :k]
