"""The simulation's settings: the roles, the pool plan, the services' sizes and rhythms, the organic
transaction mix, and the address kinds each kind of wallet uses."""
from __future__ import annotations

ROLES = ("pool_wallet", "pool_miner", "solo_miner", "exchange", "user", "faucet", "gambling",
         "payment_processor")
SOLO = "(solo/unknown)"

# (name in pools-v2.json, payout style, % of the day's blocks, settings). Most blocks go to wallet
# pools, as on mainnet: each rotates its coinbase payouts over `coinbase_addresses` addresses of its
# own (1 to 4 per block, `COINBASE_SPLIT`), and pays its miners in batches every `payout_hours`
# from those addresses' coins (matured coinbases, or coinbases from before the window), so a couple
# of days label hundreds of pool wallets with flows of their own. The direct pools (PPLNS, paying
# their miners in the coinbase) keep enough blocks for their steady miners to pass the 20 coinbase
# outputs of the `coinbase_miner` label within two days (~26–30 blocks each of ~290).
POOL_PLAN = (
    ("OCEAN", "direct", 10, {"core": 150, "casual": 250, "fee": 0.02}),
    ("Eligius", "direct", 9, {"core": 135, "casual": 165, "fee": 0.0}),
    ("KanoPool", "direct", 8, {"core": 125, "casual": 125, "fee": 0.009}),
    ("Foundry USA", "wallet", 24, {"miners": 600, "payout_hours": 4, "coinbase_addresses": 400}),
    ("AntPool", "wallet", 17, {"miners": 500, "payout_hours": 6, "coinbase_addresses": 300}),
    ("F2Pool", "wallet", 13, {"miners": 400, "payout_hours": 8, "coinbase_addresses": 250}),
    ("ViaBTC", "wallet", 9, {"miners": 300, "payout_hours": 3, "coinbase_addresses": 150}),
    ("Braiins Pool", "wallet", 7, {"miners": 250, "payout_hours": 6, "coinbase_addresses": 120}),
)
# A wallet pool's coinbase pays 1, 2, 3 or 4 of its addresses with these weights (mean 2).
COINBASE_SPLIT = (4, 3, 2, 1)
SOLO_SHARE = 3
DIRECT_MIN_OUTPUTS, DIRECT_MAX_OUTPUTS = 30, 150
N_SOLO_MINERS = 8

# (share of deposits, withdrawal interval s, consolidation interval s): bigger exchanges act more often.
EXCHANGES = ((40, 480, 7200), (30, 600, 10800), (20, 900, 14400), (10, 1200, 21600))
GAMBLING = ((50, 900), (30, 1200), (20, 1800))          # (share of bets, payout interval s)
FAUCETS = ((400, 2400), (300, 3600), (250, 5400))       # (claimers, payout interval s)
PROCESSORS = ((60, 14400), (40, 21600))                 # (merchants, settlement interval s)
# Rhythmic service transactions may take at most this share of a day's non-coinbase budget;
# beyond it their intervals stretch, so small test runs still have organic traffic.
MAX_SCHEDULED_SHARE = 0.4

# Organic transaction mix: cumulative thresholds over rng.random().
_ORGANIC = ((0.57, "pay"), (0.76, "deposit"), (0.84, "bet"), (0.90, "invoice"),
            (0.98, "miner"), (1.01, "consolidate"))
P_PREHISTORY = 0.2   # share of user spends that use coins received before the window
OP_RETURN_EVERY, MULTISIG_EVERY = 2500, 8000   # organic transactions per extra output of that kind
COINBASE_MATURITY = 100
DUST = 546
SECONDS_PER_DAY = 86400

P2PKH, P2SH, P2WPKH = 0, 1, 2
USER_KINDS = (P2WPKH,) * 11 + (P2PKH,) * 5 + (P2SH,) * 4
SERVICE_KINDS = (P2WPKH, P2WPKH, P2WPKH, P2SH, P2SH)
