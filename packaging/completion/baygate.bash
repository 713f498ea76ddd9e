# bash completion for baygate. Commands, subcommands and options are read
# from baygate's own help text at completion time, so they are never listed
# twice and cannot go stale.

_baygate() {
    local cur prev words cword
    _init_completion || return

    if ((cword == 1)); then
        local cmds
        cmds=$(baygate help 2>/dev/null | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }')
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi

    local cmd=${words[1]}
    [[ $cmd == help ]] && {
        ((cword == 2)) && COMPREPLY=($(compgen -W "$(baygate help 2>/dev/null |
            awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }')" -- "$cur"))
        return
    }

    case $prev in
    --dir | --data-dir | --ca | --attest-dir)
        _filedir -d
        return
        ;;
    --out | --in | --file | --csr | --consent | --roster | --status | --crl | --share)
        _filedir
        return
        ;;
    --log-level)
        COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
        return
        ;;
    --log-format)
        COMPREPLY=($(compgen -W "text json" -- "$cur"))
        return
        ;;
    esac

    local help
    help=$(baygate "$cmd" --help 2>&1)
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u)" -- "$cur"))
        return
    fi
    # "baygate ca init|issue|..." in the usage text: the second word.
    if ((cword == 2)); then
        local subs
        subs=$(grep -oE -- "baygate $cmd [a-z][a-z|-]*" <<<"$help" | awk '{ print $3 }' | tr '|' '\n' | sort -u)
        if [[ -n $subs ]]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
            return
        fi
    fi
    _filedir
}
complete -F _baygate baygate
