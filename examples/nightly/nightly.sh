#!/usr/bin/env bash
# Nightly incremental batch: predict every FASTA file in a folder that grows over time.
# Targets already predicted with the same settings come from the store (no MSA search,
# no model call); only new or changed targets cost compute. Each night is its own run id.
#
# crontab -e:
#   30 1 * * *  /opt/foldflow/examples/nightly/nightly.sh >> /var/log/foldflow-nightly.log 2>&1
set -euo pipefail
TARGETS=${TARGETS:-/data/targets}            # a folder of FASTA files (or one FASTA file)
RESULTS=${RESULTS:-/data/results}            # outputs; summary.parquet marks cached targets
STORE=${STORE:-/data/foldflow-store}         # shared step store (a path or s3://bucket/prefix)
CONFIG=${CONFIG:-/opt/foldflow/configs/alphafold.yaml}
FOLDFLOW=${FOLDFLOW:-foldflow}

run_id="nightly-$(date +%Y%m%d)"
if "$FOLDFLOW" runs status "$run_id" --store "$STORE" >/dev/null 2>&1; then
  # tonight's run exists (the machine rebooted, the job was killed): finish it
  exec "$FOLDFLOW" runs resume "$run_id" --store "$STORE" --no-progress
fi
exec "$FOLDFLOW" predict "$TARGETS" --out "$RESULTS" --config "$CONFIG" --store "$STORE" \
  --run-id "$run_id" --skip-invalid --no-progress
