package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The completion scripts ask hoard itself what may follow the words typed
// so far (urfave/cli's --generate-bash-completion), so they stay in step
// with the command definitions without being regenerated.
const bashCompletion = `# bash completion for hoard (hoard completion bash).
# Load it now with: source <(hoard completion bash)
# or for good:      hoard completion bash > /etc/bash_completion.d/hoard
_hoard() {
	local cur="${COMP_WORDS[COMP_CWORD]}" words
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _hoard hoard
`

const zshCompletion = `#compdef hoard
# zsh completion for hoard (hoard completion zsh).
# Put it in a folder of $fpath as _hoard, or: source <(hoard completion zsh)
_hoard() {
	local -a opts
	local cur=${words[CURRENT]}
	if [[ "$cur" == -* ]]; then
		opts=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:CURRENT-1} $cur --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:CURRENT-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${opts[1]}" ]]; then
		_describe 'hoard' opts
	else
		_files
	fi
}
if [[ "$funcstack[1]" == "_hoard" ]]; then
	_hoard "$@"
else
	compdef _hoard hoard
fi
`

func completionCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes one shell: bash, zsh or fish")
			}
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(g.stdout, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(g.stdout, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(g.stdout, s)
				return err
			}
			return usagef("completion: unknown shell %q (bash, zsh or fish)", c.Args().First())
		},
	}
}

func manCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print hoard's man page (roff), made from the command definitions: hoard man | man -l -",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("man takes no arguments")
			}
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.stdout, s)
			return err
		},
	}
}
