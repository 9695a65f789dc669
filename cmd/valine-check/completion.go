package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask the binary itself what may come next: with
// EnableBashCompletion, urfave/cli answers a command line ending in
// --generate-bash-completion with the names of the commands (or, after a
// dash, the flags) that may follow, and does nothing else. They are
// urfave/cli's autocomplete/bash_autocomplete and zsh_autocomplete, with
// the program named and without bash-completion's helpers, which not every
// shell has. PROG stands for the program's name.
const bashCompletion = `# bash completion for PROG
# Load it in this shell:  source <(PROG completion bash)
# or for every shell:     PROG completion bash > /etc/bash_completion.d/PROG
_PROGFUNC_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" opts
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _PROGFUNC_complete PROG
`

const zshCompletion = `#compdef PROG
# zsh completion for PROG
# Load it (after compinit) in ~/.zshrc:  source <(PROG completion zsh)
_PROGFUNC_complete() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _PROGFUNC_complete PROG
`

// completionShells are the shells a script is printed for.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Load it in the current shell, or install it for every new one:

  bash:  source <(valine-check completion bash)      # or: > /etc/bash_completion.d/valine-check
  zsh:   source <(valine-check completion zsh)       # in ~/.zshrc, after compinit
  fish:  valine-check completion fish > ~/.config/fish/completions/valine-check.fish

bash and zsh ask the binary what may follow (valine-check ... --generate-bash-completion),
so they complete the commands and flags of the binary on the PATH; fish's is a static list.`,
		Action: func(cCtx *cli.Context) error {
			if cCtx.NArg() != 1 {
				return usageError(cCtx, "give one shell: %s", orList(completionShells))
			}
			script, err := completionScript(cCtx.App, cCtx.Args().First())
			if err != nil {
				return usageError(cCtx, "%v", err)
			}
			fmt.Fprint(cCtx.App.Writer, script)
			return nil
		},
	}
}

// completionScript is app's completion script for shell.
func completionScript(app *cli.App, shell string) (string, error) {
	named := func(s string) string {
		return strings.NewReplacer("PROGFUNC", strings.ReplaceAll(app.Name, "-", "_"), "PROG", app.Name).Replace(s)
	}
	switch shell {
	case "bash":
		return named(bashCompletion), nil
	case "zsh":
		return named(zshCompletion), nil
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return "", fmt.Errorf("writing the fish completion: %w", err)
		}
		return s, nil
	}
	return "", fmt.Errorf("unknown shell %q: want %s", shell, orList(completionShells))
}
