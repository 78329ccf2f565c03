"""The API's response and request bodies: Pydantic models, so the OpenAPI schema (/docs,
/openapi.json) is the documentation of every field."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_BATCH = 1_000


class Problem(BaseModel):
    """Every error: what was wrong, what kind of input it was, what to do."""

    error: str = Field(description="A short name: malformed_address, not_mainnet, not_found, too_many, …")
    detail: str = Field(description="What was wrong, in a sentence")
    kind: str | None = Field(None, description="What the input is instead (testnet, private_key, transaction_id, …)")
    what_to_do: str | None = None


class Watermark(BaseModel):
    block_number: int | None = Field(description="The last block of the data (block_pools)")
    block_time: str | None = Field(description="Its time, UTC")


class Lineage(BaseModel):
    """Where an answer comes from."""

    snapshot_day: str = Field(description="The day of the serving snapshot that answered")
    snapshot_version: str = Field(description="Its immutable version (serving/dt=<day>/v=<version>/)")
    data_since: str = Field(description="The first scored day of the data")
    pools_sha256: str | None = Field(description="sha256 of the pools list (include/pools/pools-v2.json) that labelled "
                                     "the day, as its address_labels record it; null for labels older than the record")
    watermark: Watermark


class KnownPool(BaseModel):
    pool_id: int
    pool_name: str | None
    label_kind: str | None = Field(description="pool_wallet: the pool's own address (a pools-list address, or paid "
                                              "by the coinbases of a pool that pays from a wallet); coinbase_miner: a "
                                              "miner paid directly by the coinbases of a pool that pays its miners there")
    label_source: str | None = Field(description="How it was labelled: coinbases or pool_list")
    coinbase_outputs: int | None = Field(description="Coinbase outputs of the pool's blocks paying it, up to the day")


class Profile(BaseModel):
    profile: int | None = Field(description="The k-means cluster of the model version")
    anomaly_score: float | None = Field(description="Isolation forest score; higher = more unusual")
    is_anomaly: bool | None


class Contribution(BaseModel):
    """One feature's share of the model's raw output (the scoring batch's tree-path decomposition)."""

    feature: str
    value: float = Field(description="The feature's value the address was scored on")
    contribution: float = Field(description="Its contribution to the raw output (log-odds, or probability for "
                                            "a random forest); positive pushes towards a pool address")


class Explanation(BaseModel):
    """What the contributions add up to: bias + Σ contributions + rest = raw_output (to rounding, 1e-12)."""

    raw_output: float = Field(description="The model's raw output for the address (see raw_output_kind)")
    raw_output_kind: str | None = Field(description="log-odds (gradient boosting: score = 1/(1+e^-raw)) or "
                                                    "probability (random forest: raw = score)")
    bias: float = Field(description="The model's expected raw output over its training samples")
    rest: float = Field(description="The sum of the contributions not listed (beyond the top k)")


class Decision(BaseModel):
    """The decision at the threshold of the model that scored the address (docs/model.md, Calibration)."""

    is_pool: bool = Field(description="score ≥ threshold")
    threshold: float = Field(description="The model's threshold on its calibrated probability, chosen on its "
                                         "evaluation rows for target_precision (metadata.json threshold)")
    calibration: str | None = Field(None, description="How the score was calibrated (sigmoid or isotonic); null: "
                                                      "the model predates calibration, its score is predict_proba")
    target_precision: float | None = Field(None, description="The precision the threshold was chosen for")
    target_reached: bool | None = Field(None, description="False: no threshold reached target_precision on the "
                                                          "evaluation rows; the threshold gives the best precision")
    precision: float | None = Field(None, description="Precision at the threshold on the model's evaluation rows "
                                                      "(negatives weighted to the address population)")
    recall: float | None = Field(None, description="Recall at the threshold on the model's evaluation rows")


class AddressScore(BaseModel):
    """The latest score of an address up to the snapshot's day, and what explains it."""

    address: str
    address_kinds: list[str] = Field(description="The kind of each comma-joined part (P2PKH, P2WPKH, P2TR, …)")
    scored: bool = Field(description="False for a pool address that only coinbases paid (no features: not scored)")
    score: float | None = Field(None, description="Probability that it is a mining-pool address: the model's "
                                                  "calibrated probability (decision.calibration says how; null "
                                                  "there: a model before calibration, its predict_proba)")
    probability: float | None = Field(None, description="The calibrated probability (= score) when the model that "
                                                        "scored it is calibrated; null otherwise")
    decision: Decision | None = None
    known_pool: bool = Field(description="Labelled a pool address (coinbases or the pools list)")
    pools: list[KnownPool] = Field(description="The pools it is labelled for, and how")
    profile: Profile | None = None
    contributions: list[Contribution] = Field(
        default_factory=list, description="The top feature contributions to the score's raw output, largest |contribution| "
                                          "first, computed by the scoring batch; empty when the address has none "
                                          "(contributions_note says why)")
    explanation: Explanation | None = Field(None, description="What the contributions sum to; null when none")
    contributions_note: str | None = Field(None, description="Why the address has no contributions, when it has none")
    features: dict[str, float | int | None] = Field(description="The feature values it was scored on")
    first_seen: str | None = Field(None, description="First ordinary transaction, UTC")
    last_seen: str | None = Field(None, description="Last ordinary transaction up to the day, UTC")
    first_flagged: str | None = Field(None, description="First day its score reached the threshold")
    scored_day: str | None = Field(None, description="The day it was last scored (last active)")
    model_version: str | None = Field(None, description="The model that scored it")
    lineage: Lineage


class LookupRequest(BaseModel):
    addresses: list[str] = Field(description=f"At most {MAX_BATCH} address keys")


class LookupItem(BaseModel):
    address: str
    status: Literal["found", "not_found", "invalid"]
    result: AddressScore | None = None
    problem: Problem | None = None


class LookupResponse(BaseModel):
    snapshot_day: str
    model_version: str
    found: int
    results: list[LookupItem]


class HistoryPoint(BaseModel):
    day: str
    score: float
    label: bool
    model_version: str


class AddressHistory(BaseModel):
    address: str
    history: list[HistoryPoint]
    lineage: Lineage


class PoolDay(BaseModel):
    day: str
    blocks: int
    share: float = Field(description="Share of the day's blocks")


class Pool(BaseModel):
    pool_id: int = Field(description="The pools list's id; -1 for blocks no pool was found for")
    pool_name: str | None
    blocks: int = Field(description="Blocks mined over the data's days")
    labelled_addresses: int = Field(description="Addresses labelled for the pool up to the day")
    predicted_addresses: int = Field(description="Of those, how many the model scores at or above its threshold")
    days: list[PoolDay]


class PoolAddress(BaseModel):
    address: str
    label_kind: str | None
    label_source: str | None
    coinbase_outputs: int | None
    score: float | None
    is_pool: bool | None
    scored_day: str | None


class PoolDetail(Pool):
    addresses: list[PoolAddress]


class PoolsResponse(BaseModel):
    pools: list[Pool]
    unattributed_predicted: int = Field(description="Addresses the model flags that no label explains (candidates)")
    lineage: Lineage


class Candidate(BaseModel):
    address: str
    score: float
    first_flagged: str | None = Field(description="First day its score reached the threshold")
    scored_day: str
    model_version: str
    profile: int | None
    anomaly_score: float | None
    is_anomaly: bool | None


class CandidatesResponse(BaseModel):
    total: int
    limit: int
    offset: int
    candidates: list[Candidate]
    lineage: Lineage


class ModelSummary(BaseModel):
    version: str
    trained_for: str | None
    estimator: str | None
    threshold: float | None
    calibration: dict | None = Field(None, description="The calibration map, its Brier scores and reliability "
                                                       "bins on the evaluation rows, and the threshold's decision "
                                                       "(metadata.json calibration); null before calibration")
    metrics: dict
    promotion: dict | None
    data: dict | None
    plots: list[str] = Field(description="URLs of the report's plots")


class Comparison(BaseModel):
    """The champion and the challenger on the same evaluation rows (neither trained on them)."""

    champion: dict
    challenger: dict


class ModelResponse(BaseModel):
    champion: ModelSummary
    challenger: ModelSummary | None = Field(description="The latest training run's version, when not the champion")
    comparison: Comparison | None = Field(None, description="Both on the challenger's evaluation rows")
    report_markdown: str | None
    lineage: Lineage


class Ready(BaseModel):
    ready: bool
    snapshot_day: str | None = None
    snapshot_version: str | None = None
    model_version: str | None = None
    switches: int = 0
    last_error: str | None = None


# ---------------------------------------------------------------- /v1/pools/activity (the hourly DAG)


class ActivityPool(BaseModel):
    """One pool over the window: mempool's /api/v1/mining/pools/<period> fields where they exist."""

    poolId: int = Field(description="The pools list's id; -1 for the blocks no tag or payout address matched")
    name: str
    rank: int = Field(description="1 for the pool with most blocks")
    blockCount: int
    share: float = Field(description="blockCount / the window's blocks")
    byTag: int = Field(description="Of its blocks, those attributed by coinbase tag")
    byAddress: int = Field(description="… by payout address")
    transactions: int
    fees: int | None = Field(description="Satoshi; null where the coinbase outputs were not read (gcp)")


class ActivityHour(BaseModel):
    hour: str = Field(description="Start of the UTC hour")
    blocks: int
    unknown: int = Field(description="Of them, blocks no pool matched")
    status: Literal["ok", "empty", "missing"] = Field(description="empty: processed, no block; missing: not processed")


class NewestBlock(BaseModel):
    height: int
    time: str
    ageSeconds: int = Field(description="Seconds between the block's time and the answer")


class ActivityWindow(BaseModel):
    from_: str = Field(alias="from", description="Start of the first hour, UTC")
    to: str = Field(description="End of the last hour (exclusive)")


class ActivityLineage(BaseModel):
    version: str = Field(description="The version of activity/recent/ that answered")
    publishedAt: str | None
    poolsSha256: list[str] = Field(description="sha256 of the pools list(s) that attributed the blocks")
    attributionInputs: list[str] = Field(description="tags+addresses (coinbase outputs read), or tags only")


class ActivityResponse(BaseModel):
    """Who mined in the last hours (the hourly DAG pool_activity_hourly)."""

    status: Literal["ok", "stale", "empty", "no_data"] = Field(
        description="ok; stale: the newest block is older than staleAfterSeconds; empty: no block in the window; "
                    "no_data: nothing published yet")
    detail: str
    hours: int
    window: ActivityWindow | None = Field(description="The hours counted: those up to the newest hour processed")
    blockCount: int
    unknownBlockCount: int
    unknownShare: float | None
    pools: list[ActivityPool]
    blocksPerHour: list[ActivityHour]
    newestBlock: NewestBlock | None
    staleAfterSeconds: int
    lineage: ActivityLineage | None
