#!/usr/bin/env bash
# Nightly incremental batch: predict every FASTA file in a folder that grows over time.
# Targets already predicted with the same settings come from the store (no MSA search,
# no model call); only new or changed targets cost compute. Each night is its own run id.
# Exits non-zero when the night's run fails (a target failed or was invalid), so the scheduler shows it.
#
# On a Ray cluster (ADDRESS = its dashboard, e.g. http://foldflow-head-svc:8265; the KubeRay CronJob in
# configs/kuberay/cronjob.yaml runs this): tonight's run is submitted as a Ray job and followed to its end;
# a retried CronJob pod follows the job submitted before instead of starting the run twice.
# On one machine (ADDRESS unset), e.g. from crontab -e:
#   30 1 * * *  /opt/foldflow/examples/nightly/nightly.sh >> /var/log/foldflow-nightly.log 2>&1
set -euo pipefail
TARGETS=${TARGETS:-/data/targets}            # a folder of FASTA files (or one FASTA file)
RESULTS=${RESULTS:-/data/results}            # outputs; summary.parquet marks cached targets
STORE=${STORE:-/data/foldflow-store}         # shared step store (a path or s3://bucket/prefix)
CONFIG=${CONFIG:-/opt/foldflow/configs/alphafold.yaml}
FOLDFLOW=${FOLDFLOW:-foldflow}
ADDRESS=${ADDRESS:-}                         # a Ray cluster's dashboard; empty: run here
PYTHON=${PYTHON:-python}                     # on the cluster: the Python that has foldflow

run_id="${RUN_PREFIX:-nightly}-$(date +%Y%m%d)"
if [ -n "$ADDRESS" ]; then
  exec "$FOLDFLOW" submit "$TARGETS" --address "$ADDRESS" --out "$RESULTS" --config "$CONFIG" \
    --store "$STORE" --run-id "$run_id" --skip-invalid --python "$PYTHON" --wait
fi
if "$FOLDFLOW" runs status "$run_id" --store "$STORE" >/dev/null 2>&1; then
  # tonight's run exists (the machine rebooted, the job was killed): finish it
  exec "$FOLDFLOW" runs resume "$run_id" --store "$STORE"
fi
exec "$FOLDFLOW" predict "$TARGETS" --out "$RESULTS" --config "$CONFIG" --store "$STORE" \
  --run-id "$run_id" --skip-invalid --progress none
