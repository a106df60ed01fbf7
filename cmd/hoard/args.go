package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves a command's flags in front of its positional arguments,
// so that `hoard restore latest --target DIR` works as restic users expect
// (urfave/cli v2 stops at the first positional argument). Everything after
// "--" is left alone.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags before the command name.
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	if cmd == nil {
		return append(out, args[i:]...)
	}
	// A subcommand (hoard key remove ...): its own flags follow its name.
	for i < len(args) && len(cmd.Subcommands) > 0 {
		sub := findSubcommand(cmd, args[i])
		if sub == nil {
			break
		}
		out = append(out, args[i])
		cmd = sub
		i++
	}
	var flags, pos, globalFlags []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			// A global flag after the command (hoard snapshots --json)
			// goes back in front of the command name, as restic allows.
			if !hasFlag(cmd.Flags, a) && hasFlag(app.Flags, a) {
				globalFlags = append(globalFlags, a)
				if takesValue(app.Flags, a) && i+1 < len(args) {
					globalFlags = append(globalFlags, args[i+1])
					i++
				}
				continue
			}
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	out = append(out, flags...)
	out = append(out, pos...)
	if len(globalFlags) == 0 {
		return out
	}
	// Insert the global flags right after the program name.
	res := append([]string{out[0]}, globalFlags...)
	return append(res, out[1:]...)
}

// hasFlag reports whether arg (like "--json", "-r" or "--repo=x") names one of flags.
func hasFlag(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if i := strings.Index(name, "="); i >= 0 {
		name = name[:i]
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// takesValue reports whether the flag arg (like "--target" or "-t") names a
// flag that takes a separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

func findSubcommand(cmd *cli.Command, name string) *cli.Command {
	for _, c := range cmd.Subcommands {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
