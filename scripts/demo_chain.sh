# Sourced by run_local.sh and airflow_standalone.sh: the embedded default data.
# `demo_chain` generates the seeded synthetic chain once (skipped when already complete) and
# sets CHAIN to its folder. Settings: DEMO_START, DEMO_DAYS, DEMO_TX_PER_DAY, DEMO_SEED.
DEMO_START=${DEMO_START:-2024-03-01}
DEMO_DAYS=${DEMO_DAYS:-2}
DEMO_TX_PER_DAY=${DEMO_TX_PER_DAY:-20000}
DEMO_SEED=${DEMO_SEED:-7}
DATA=${POOL_CLASSIFIER_DATA_DIR:-data}
CHAIN="$DATA/synthetic/seed${DEMO_SEED}_${DEMO_START}_${DEMO_DAYS}d_${DEMO_TX_PER_DAY}tx"

demo_chain() {  # $1: the caller's log prefix
  if [ ! -f "$CHAIN/.complete" ]; then
    echo "$1: generating $DEMO_DAYS day(s) x $DEMO_TX_PER_DAY transactions from $DEMO_START (seed $DEMO_SEED)"
    rm -rf "$CHAIN"
    mkdir -p "$(dirname "$CHAIN")"
    .venv/bin/python -m tools.synthetic_chain --out "$CHAIN" --start "$DEMO_START" \
        --days "$DEMO_DAYS" --tx-per-day "$DEMO_TX_PER_DAY" --seed "$DEMO_SEED" > "$CHAIN.summary.txt"
    touch "$CHAIN/.complete"
  fi
}
