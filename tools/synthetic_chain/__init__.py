"""Write a deterministic synthetic Bitcoin chain, day by day, in the exact NDJSON shape of `bq extract` of
`crypto_bitcoin.blocks` / `.transactions`, with the ground-truth role of every address it uses.

    python -m tools.synthetic_chain --out DIR --start 2024-03-01 --days 3 --tx-per-day 20000 --seed 7

The parts, bottom up: `settings` (the pool plan, the services, the transaction mix), `encoding`
(hashes, base58check, bech32, script pushes), `consensus` (subsidy, difficulty bits, the first
height), `sampling` (weighted draws), `actors` (addresses, wallets, pools, the pools list), `bq_json`
(input and output JSON); `chain` (the chain's state and mechanics) combines the transaction kinds of
`users`, `services`, `pools` and `coinbase`; `writer` writes the days and the ground truth
(`generate`); `cli` is the command line.
"""
from .actors import DEFAULT_POOLS_PATH, Actor, Addr, load_pools
from .cli import main
from .consensus import HALVINGS, start_height, subsidy
from .encoding import b58check_decode, b58check_encode, bip34_height_push, segwit_decode, segwit_encode, sha256d
from .settings import (
    COINBASE_MATURITY,
    COINBASE_SPLIT,
    DIRECT_MAX_OUTPUTS,
    DIRECT_MIN_OUTPUTS,
    DUST,
    EXCHANGES,
    FAUCETS,
    GAMBLING,
    MAX_SCHEDULED_SHARE,
    MULTISIG_EVERY,
    N_SOLO_MINERS,
    OP_RETURN_EVERY,
    P2PKH,
    P2SH,
    P2WPKH,
    P_PREHISTORY,
    POOL_PLAN,
    PROCESSORS,
    ROLES,
    SECONDS_PER_DAY,
    SERVICE_KINDS,
    SOLO,
    SOLO_SHARE,
    USER_KINDS,
)
from .writer import generate

__all__ = [
    "COINBASE_MATURITY", "COINBASE_SPLIT", "DEFAULT_POOLS_PATH", "DIRECT_MAX_OUTPUTS", "DIRECT_MIN_OUTPUTS", "DUST", "EXCHANGES",
    "FAUCETS", "GAMBLING", "HALVINGS", "MAX_SCHEDULED_SHARE", "MULTISIG_EVERY", "N_SOLO_MINERS", "OP_RETURN_EVERY",
    "P2PKH", "P2SH", "P2WPKH", "P_PREHISTORY", "POOL_PLAN", "PROCESSORS", "ROLES", "SECONDS_PER_DAY",
    "SERVICE_KINDS", "SOLO", "SOLO_SHARE", "USER_KINDS", "Actor", "Addr", "b58check_decode", "b58check_encode",
    "bip34_height_push", "generate", "load_pools", "main", "segwit_decode", "segwit_encode", "sha256d",
    "start_height", "subsidy",
]
