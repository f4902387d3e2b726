#!/bin/sh
# One sharded run on AWS Batch: registers the job definition, submits the shards as one array
# job (submit-shards.json: 16 children, AWS_BATCH_JOB_ARRAY_INDEX 0..15), submits the merge
# depending on the whole array (submit-merge.json), waits for the merge, fetches merged.json and
# exits with its exit code, which is the run's verdict (0 clean, 1 error findings, 2 incomplete
# or refused).
#
#   SOURCE=s3://org-log-archive REPORTS=s3://org-trailproof-reports/trailproof deploy/batch/run.sh
#
# Each run writes below a prefix of its own, $REPORTS/<UTC time of submission>/, so that the
# merge can only see this run's shards. A child that exits 2 (or keeps failing) fails the array
# job, and Batch then fails the merge without running it ("Dependent Job failed"): the verdict
# is 2, and the shards' reports in S3 say what could not be checked.
# Needs the AWS CLI, a job queue named as in the submit files, and the image built from
# deploy/Dockerfile's trailproof-aws target pushed where job-definition.json says.
set -eu
cd "$(dirname "$0")"
source="${SOURCE:-s3://org-log-archive}"
run="$(date -u +%Y%m%dT%H%M%SZ)"
output="${REPORTS:-s3://org-trailproof-reports/trailproof}/$run"

definition=$(aws batch register-job-definition --cli-input-json file://job-definition.json \
  --query jobDefinitionArn --output text)
shards=$(aws batch submit-job --cli-input-json file://submit-shards.json \
  --job-definition "$definition" \
  --parameters "{\"mode\": \"verify\", \"source\": \"$source\", \"output\": \"$output\"}" \
  --query jobId --output text)
merge=$(aws batch submit-job --cli-input-json file://submit-merge.json \
  --job-definition "$definition" \
  --depends-on "jobId=$shards" \
  --parameters "{\"mode\": \"merge\", \"source\": \"$source\", \"output\": \"$output\"}" \
  --query jobId --output text)
echo "shards: $shards  merge: $merge  reports: $output/" >&2

while :; do
  status=$(aws batch describe-jobs --jobs "$merge" --query 'jobs[0].status' --output text)
  case "$status" in
    SUCCEEDED|FAILED) break ;;
  esac
  sleep 30
done

code=$(aws batch describe-jobs --jobs "$merge" --query 'jobs[0].container.exitCode' --output text)
case "$code" in
  ''|None)
    reason=$(aws batch describe-jobs --jobs "$merge" --query 'jobs[0].statusReason' --output text)
    echo "the merge did not run ($reason): a shard failed; see its log and $output/" >&2
    exit 2
    ;;
esac
if aws s3 cp --only-show-errors "$output/merged.json" ./merged.json; then
  echo "merged report: ./merged.json ($output/merged.json, $output/merged.xml)" >&2
fi
echo "trailproof merge exited $code" >&2
exit "$code"
