# Shared by the shell drivers (sourced): the command to run, extra flags, and the layout check.
# MATE_KD is the command (default mate-kd; e.g. MATE_KD="python -m mate_kd"); EXTRA_ARGS are appended.
read -r -a CMD <<< "${MATE_KD:-mate-kd}"
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"

missing=0
require() {  # require DIR FILE DESCRIPTION HOW-TO: report a missing piece of the layout, keep checking
    if [[ ! -f "$1/$2" ]]; then
        printf 'error: missing %s: %s/%s not found.\n  %s\n' "$3" "$1" "$2" "$4" >&2
        missing=1
    fi
}
