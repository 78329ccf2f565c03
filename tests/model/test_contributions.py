"""Feature contributions (model/contributions.py) on real trained models of both kinds the registry
holds: bias + contributions = the model's raw output, row by row; the same steps as a plain walk
down each tree; a stump worked by hand; the top k, their rest, and scoring's columns."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from pool_classifier.model import contributions, registry, scoring, training
from pool_classifier.model.profiles import ProfileConfig
from pool_classifier.steps import train_model
from tests.model.features_day import write_day

DS = "2024-03-02"
FAST = dict(profiles=ProfileConfig(k_max=3), importance_repeats=1)
# The two candidates of training.py as they are (200 trees each), one per registry.
KINDS = {"rf": training.BASELINE, "hgb": training.CHALLENGER}


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """{kind: (the loaded registry version, the day's feature rows)}, trained by train_model."""
    from pool_classifier import targets

    out = {}
    for kind, candidate in KINDS.items():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(targets.TARGET_ENV, "local")
            mp.setenv(targets.local.DATA_DIR_ENV, str(tmp_path_factory.mktemp(kind) / "data"))
            target = targets.current_target()
            frame = write_day(target, DS)
            version = train_model.train_model(target, DS, training.TrainConfig(candidates=(candidate,), **FAST))
            out[kind] = (registry.load_version(target, version["version"]), frame)
    return out


def _model_raw(model, x):
    """The raw output straight from scikit-learn: the forest's probability, the boosting's log-odds."""
    if isinstance(model, RandomForestClassifier):
        return model.predict_proba(x)[:, 1]
    return model.decision_function(x)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bias_plus_contributions_is_the_models_raw_output_on_every_row(versions, kind):
    version, frame = versions[kind]
    x = training.features_matrix(frame, version.features)
    explainer = version.explainer
    phi = explainer.contributions(x)

    assert explainer.kind == {"rf": "probability", "hgb": "log-odds"}[kind]
    assert phi.shape == (3060, len(version.features))
    np.testing.assert_allclose(explainer.bias + phi.sum(axis=1), _model_raw(version.model, x), rtol=0, atol=1e-9)
    # The raw output from the same walk is the model's to the bit: every row took the model's branches.
    raw, walked = explainer.explain(x)
    assert np.array_equal(raw, _model_raw(version.model, x)) and np.array_equal(walked, phi)
    assert np.array_equal(explainer.raw_output(x), _model_raw(version.model, x))
    # They explain something: on the pools the two features that carry the signal lead.
    pools = np.abs(phi[:60]).mean(axis=0)
    top = {version.features[i] for i in np.argsort(-pools)[:2]}
    assert top == {"total_tx_input_count", "mean_tx_output_value"}
    # A row's contributions do not depend on the rows beside it (Spark batches differ).
    assert np.array_equal(explainer.contributions(x[7:9]), phi[7:9])


def _walk(version, row: np.ndarray) -> tuple[float, np.ndarray]:
    """bias and contributions of one row, by walking each tree in plain Python: the node expectations
    recomputed recursively from the leaves (weighted as the module says), a step per edge."""
    model, n = version.model, len(version.features)
    phi, bias = np.zeros(n), 0.0
    if isinstance(model, RandomForestClassifier):
        x = row.astype(np.float32)  # what the forest's predict compares
        trees = []
        for est in model.estimators_:
            t = est.tree_
            value = t.value[:, 0, 1] / t.value[:, 0, :].sum(axis=1)
            trees.append((t.children_left, t.children_right, t.feature, t.threshold, value,
                          t.weighted_n_node_samples, 1 / len(model.estimators_)))
    else:
        x = row
        bias = float(model._baseline_prediction.ravel()[0])
        trees = []
        for (p,) in model._predictors:
            nodes = p.nodes
            left = np.where(nodes["is_leaf"] == 1, -1, nodes["left"].astype(int))
            right = np.where(nodes["is_leaf"] == 1, -1, nodes["right"].astype(int))
            trees.append((left, right, nodes["feature_idx"], nodes["num_threshold"], nodes["value"],
                          nodes["count"].astype(float), 1.0))

    for left, right, feature, threshold, value, weight, scale in trees:
        def expect(node):
            if left[node] < 0:
                return value[node], weight[node]
            (el, wl), (er, wr) = expect(left[node]), expect(right[node])
            return (wl * el + wr * er) / (wl + wr), wl + wr

        node, here = 0, expect(0)[0]
        bias += scale * here
        while left[node] >= 0:
            f = feature[node]
            node = left[node] if x[f] <= threshold[node] else right[node]
            there = expect(node)[0]
            phi[f] += scale * (there - here)
            here = there
    return bias, phi


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_contributions_are_the_steps_of_a_plain_walk_down_each_tree(versions, kind):
    version, frame = versions[kind]
    x = training.features_matrix(frame, version.features)
    rows = [0, 1, 59, 60, 1234, 3059]  # pools and others
    phi = version.explainer.contributions(x[rows])
    for i, r in enumerate(rows):
        bias, walked = _walk(version, x[r])
        assert version.explainer.bias == pytest.approx(bias, abs=1e-12)
        np.testing.assert_allclose(phi[i], walked, rtol=0, atol=1e-12)


def test_a_stump_by_hand():
    # Feature 0 separates the classes; the stump splits on it, feature 1 is never used.
    x = np.array([[0.0, 5.0], [0.0, 7.0], [1.0, 5.0], [1.0, 9.0], [1.0, 8.0]])
    y = np.array([0, 0, 1, 1, 1])
    forest = RandomForestClassifier(n_estimators=1, max_depth=1, bootstrap=False, random_state=0).fit(x, y)
    e = contributions.explainer(forest, ["a", "b"])
    assert e.bias == pytest.approx(3 / 5)  # the share of positives the tree grew on
    np.testing.assert_allclose(e.contributions(np.array([[1.0, 0.0], [0.0, 100.0]])),
                               [[1 - 3 / 5, 0.0], [0 - 3 / 5, 0.0]], atol=1e-15)


def test_other_models_are_refused_by_name():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(contributions.ContributionError, match=r"no contributions for a LogisticRegression; known"):
        contributions.explainer(LogisticRegression(), ["a"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scoring_keeps_the_top_k_their_rest_bias_and_raw_output(versions, kind):
    version, frame = versions[kind]
    batch = frame.assign(known_pool=False)[["address", *scoring.model_inputs(version.metadata), "known_pool"]]
    scored = scoring.score_batch(version, batch.iloc[:200], DS, top_k=4)
    x = training.features_matrix(frame.iloc[:200], version.features)
    phi = version.explainer.contributions(x)
    raw = _model_raw(version.model, x)

    assert list(scored.columns) == [name for name, _ in scoring.SCORED_FIELDS]
    assert np.array_equal(scored["raw_output"].to_numpy(), raw)
    # The score is the version's calibration of the raw output (a monotone map after it, model/calibration.py):
    # the forest's probability or the boosting's log-odds, through the stored sigmoid.
    c = version.metadata["calibration"]
    assert c["method"] == "sigmoid"
    np.testing.assert_allclose(scored["score"], 1 / (1 + np.exp(c["a"] * raw + c["b"])), rtol=1e-12)
    assert (scored["label"] == (scored["score"] >= version.threshold)).all()
    assert (scored["contribution_bias"] == version.explainer.bias).all()
    for i, top in enumerate(scored[scoring.CONTRIBUTIONS_COLUMN]):
        assert [set(t) for t in top] == [{"feature", "value", "contribution"}] * 4
        names = [t["feature"] for t in top]
        magnitudes = np.abs([t["contribution"] for t in top])
        assert (np.diff(magnitudes) <= 0).all()  # largest first
        # …and no feature left out is larger than the 4th.
        left_out = [j for j, f in enumerate(version.features) if f not in names]
        assert np.abs(phi[i, left_out]).max() <= magnitudes[-1]
        for t in top:
            j = version.features.index(t["feature"])
            assert t["value"] == x[i, j] and t["contribution"] == phi[i, j]
        rest = scored["contribution_rest"][i]
        assert rest == pytest.approx(phi[i, left_out].sum(), abs=1e-12)
        assert scored["contribution_bias"][i] + sum(t["contribution"] for t in top) + rest == pytest.approx(
            raw[i], abs=1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_top_k_zero_switches_the_contributions_off_and_leaves_the_scores(versions, kind):
    version, frame = versions[kind]
    batch = frame.assign(known_pool=False)[["address", *scoring.model_inputs(version.metadata), "known_pool"]]
    on = scoring.score_batch(version, batch, DS)
    off = scoring.score_batch(version, batch, DS, top_k=0)  # scores from predict_proba alone

    assert list(off.columns) == list(on.columns)
    assert off[scoring.EXPLANATION_COLUMNS].isna().all().all()
    assert off["score"].equals(on["score"]) and off["label"].equals(on["label"])

