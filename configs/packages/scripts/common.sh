# Shared by the package scripts; make-packages puts it after a header that
# sets BUFFER_FORMAT (the buffer format the packaged build writes and reads)
# and ROOT (${IPKG_INSTROOT} on OpenWrt, "" on Debian).

CONFIG=$ROOT/etc/tidegate/tidegate.yaml
BIN=$ROOT/usr/bin/tidegate
# The buffer format of the last tidegate package installed here; kept when
# the package is removed, so a later install can still tell.
FORMAT_FILE=$ROOT$DATA_DIR/installed-buffer-format

say() { echo "tidegate: $*" >&2; }

# buffer_path prints the config's buffer.path (the built-in default when the
# config names none).
buffer_path() {
	p=
	[ -r "$CONFIG" ] && p=$(awk '
		/^[^ \t#]/ { inbuf = ($0 ~ /^buffer:/) }
		inbuf && /^[ \t]+path:/ {
			sub(/^[ \t]+path:[ \t]*/, ""); sub(/[ \t]+#.*$/, ""); gsub(/["\047]/, ""); print; exit
		}' "$CONFIG")
	echo "$ROOT${p:-$DEFAULT_BUFFER}"
}

# installed_format prints the newest buffer format this box has had: the one
# recorded by the last package, or the one the installed binary writes.
installed_format() {
	f=0
	[ -r "$FORMAT_FILE" ] && f=$(tr -cd 0-9 < "$FORMAT_FILE")
	if [ -z "$ROOT" ] && [ -x "$BIN" ]; then
		b=$("$BIN" version --json 2>/dev/null | sed -n 's/.*"buffer_format":\([0-9][0-9]*\).*/\1/p')
		[ -n "$b" ] && [ "$b" -gt "${f:-0}" ] && f=$b
	fi
	echo "${f:-0}"
}

# check_downgrade refuses to put a build that reads buffer format
# BUFFER_FORMAT over a buffer file of a newer format: it would refuse the
# file at start and the readings in it would never be sent.
check_downgrade() {
	have=$(installed_format)
	[ "$have" -gt "$BUFFER_FORMAT" ] || return 0
	db=$(buffer_path)
	[ -e "$db" ] || return 0
	say "this package's tidegate reads buffer format $BUFFER_FORMAT, but $db"
	say "was written in format $have by the tidegate installed before. Installing it would"
	say "strand the readings not yet sent. To go back to this version:"
	say "  1. let the daemon send what it holds: 'tidegate status' until nothing is unsent;"
	say "  2. stop it ($STOP_HINT) and keep a copy:"
	say "     tidegate buffer export --path $db > /root/tidegate-buffer.jsonl"
	say "  3. move the file away: mv $db $db.format$have"
	say "then install this package again. (Or move the file to a box that runs the newer version.)"
	return 1
}

# validate_config runs `tidegate config validate` and says what to fix.
validate_config() {
	[ -r "$CONFIG" ] || { say "no $CONFIG: copy /usr/share/doc/tidegate/tidegate.example.yaml there"; return 1; }
	if "$BIN" config validate "$CONFIG" >&2; then
		return 0
	fi
	say "$CONFIG has the problems listed above (file:line:column: what is expected)."
	say "Fix them, check with: tidegate config validate $CONFIG"
	say "then start the service: $START_HINT"
	return 1
}

# purge_data removes the data folder only when asked, or when nothing but
# our own note is in it.
purge_data() {
	d=$ROOT$DATA_DIR
	[ -d "$d" ] || return 0
	if [ "${TIDEGATE_PURGE_DATA:-}" = yes ]; then
		rm -rf "$d"
		say "removed $d (TIDEGATE_PURGE_DATA=yes)"
		return 0
	fi
	if [ -z "$(ls -A "$d" | grep -vx installed-buffer-format)" ]; then
		rm -rf "$d"
		return 0
	fi
	say "kept $d: its buffer may hold readings not yet sent."
	say "Delete it with: rm -rf $d (or remove the package with TIDEGATE_PURGE_DATA=yes)."
}

# The OpenWrt way of adding users (as its /lib/functions.sh does): lines
# appended to $ROOT/etc/passwd, group and shadow, which also works on an
# image's staging root.
free_id() {
	i=200
	while cut -d: -f3 "$@" 2>/dev/null | grep -qx "$i"; do i=$((i + 1)); done
	echo "$i"
}

ensure_group() { # NAME [GID]
	grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null && return 0
	echo "$1:x:${2:-$(free_id "$ROOT/etc/group")}:" >> "$ROOT/etc/group"
}

ensure_user() { # NAME HOME
	grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null && return 0
	gid=$(awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group")
	uid=$gid
	cut -d: -f3 "$ROOT/etc/passwd" 2>/dev/null | grep -qx "$uid" && uid=$(free_id "$ROOT/etc/passwd")
	echo "$1:x:$uid:$gid:$1:$2:/bin/false" >> "$ROOT/etc/passwd"
	[ ! -f "$ROOT/etc/shadow" ] || echo "$1:*:0:0:99999:7:::" >> "$ROOT/etc/shadow"
}

add_to_group() { # GROUP USER
	f=$ROOT/etc/group
	awk -F: -v g="$1" -v u="$2" 'BEGIN { OFS = ":" }
		$1 == g { n = split($4, m, ","); in_ = 0; for (i = 1; i <= n; i++) if (m[i] == u) in_ = 1
			if (!in_) $4 = ($4 == "" ? u : $4 "," u) }
		{ print }' "$f" > "$f.tidegate" && cat "$f.tidegate" > "$f" && rm -f "$f.tidegate"
}
