#!/usr/bin/env bash
# Stop the rclone peer started by rclone_start.sh (by PID) and remove its objects.
. "$(dirname "$0")/env.sh"
pidf="$PEERS/rclone/rclone.pid"
[ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null
rm -f "$pidf"; rm -rf "$PEERS/rclone/root"
