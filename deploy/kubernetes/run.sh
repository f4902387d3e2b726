#!/bin/sh
# One sharded run in the current kubectl context and namespace (kubectl -n, or KUBECONFIG):
# empties the reports volume, runs the 16 shards, then the merge, prints the merged text
# report, and exits with the merge's exit code, which is the run's verdict (0 clean, 1 error
# findings, 2 incomplete or refused). merged.json and merged.xml stay on the volume.
#
#   deploy/kubernetes/run.sh            # TIMEOUT=43200 (seconds the shards may take) by default
set -eu
cd "$(dirname "$0")"
timeout="${TIMEOUT:-43200}"

# Waits until the Job is Complete or Failed, and says which in $finished (a Failed verify Job
# is one whose shard exited 2 or kept crashing: the merge still runs, and says what is missing).
wait_job() {
  waited=0
  while :; do
    state=$(kubectl get job "$1" -o jsonpath='{.status.conditions[?(@.status=="True")].type}')
    case " $state " in
      *" Complete "*) finished=Complete ;;
      *" Failed "*) finished=Failed ;;
      *) finished= ;;
    esac
    if [ -n "$finished" ]; then
      echo "job/$1: $finished"
      return 0
    fi
    if [ "$waited" -ge "$2" ]; then
      echo "job/$1 did not finish in $2 s" >&2
      exit 2
    fi
    sleep 10
    waited=$((waited + 10))
  done
}

kubectl apply -f serviceaccount.yaml -f pvc.yaml
# A Job's pod template cannot change: the previous run's Jobs go before this run's are created.
kubectl delete job trailproof-clean trailproof-verify trailproof-merge --ignore-not-found --cascade=foreground --wait=true

kubectl create -f clean-job.yaml
wait_job trailproof-clean 600
if [ "$finished" != Complete ]; then
  echo "the reports volume could not be emptied: kubectl logs job/trailproof-clean" >&2
  exit 2
fi
kubectl create -f verify-job.yaml
wait_job trailproof-verify "$timeout"
kubectl create -f merge-job.yaml
wait_job trailproof-merge 3600

kubectl logs job/trailproof-merge
code=$(kubectl get pods -l batch.kubernetes.io/job-name=trailproof-merge \
  --sort-by=.metadata.creationTimestamp -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{"\n"}{end}' | tail -n 1)
echo "trailproof merge exited ${code:-(unknown)}" >&2
exit "${code:-2}"
