package config

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Secret is a value that may be given literally (KEY), or read from a file
// (KEY_file), a shell command's output (KEY_command) or an environment
// variable (KEY_env). At most one is set. File and command values are their
// first line.
type Secret struct {
	Value, File, Command, Env string
	// Key names the setting ("databases.main.password") and Line where
	// it is, for errors.
	Key  string
	Line int
}

// IsSet reports whether any source is given.
func (s Secret) IsSet() bool { return s.Value != "" || s.File != "" || s.Command != "" || s.Env != "" }

// Get reads the secret. Errors name the setting, never the value.
func (s Secret) Get(ctx context.Context) (string, error) {
	where := s.Key
	if s.Line > 0 {
		where = fmt.Sprintf("%s (line %d)", s.Key, s.Line)
	}
	switch {
	case s.Value != "":
		return s.Value, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("config: %s_file: %w", where, err)
		}
		return firstLine(b), nil
	case s.Command != "":
		cmd := exec.CommandContext(ctx, "sh", "-c", s.Command)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("config: %s_command: %v: %s", where, err, strings.TrimSpace(stderr.String()))
		}
		return firstLine(out), nil
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("config: %s_env: environment variable %s is not set", where, s.Env)
		}
		return v, nil
	}
	return "", nil
}

func firstLine(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if sc.Scan() {
		return strings.TrimRight(sc.Text(), "\r")
	}
	return ""
}

// secret assembles a Secret from the four keys of one setting.
func secret(table, name, value, file, command, env string, lines lineMap, cfgFile string) (Secret, error) {
	s := Secret{Value: value, File: file, Command: command, Env: env, Key: table + "." + name, Line: lines.find(table + "." + name)}
	var given []string
	for suffix, v := range map[string]string{"": value, "_file": file, "_command": command, "_env": env} {
		if v != "" {
			given = append(given, name+suffix)
		}
	}
	if len(given) > 1 {
		line := 0
		for _, g := range given {
			if l := lines.find(table + "." + g); l > line {
				line = l
			}
		}
		return Secret{}, &Error{File: cfgFile, Line: line, Msg: fmt.Sprintf("%s: give only one of %s, %s_file, %s_command and %s_env", table, name, name, name, name)}
	}
	if len(given) == 1 {
		s.Line = lines.find(table + "." + given[0])
	}
	return s, nil
}

// Duration is a span of calendar time such as "1y6m", "30d" or "12h"
// (restic's --keep-within form): years, months, days and hours.
type Duration struct {
	Years, Months, Days, Hours int
}

var durationRe = regexp.MustCompile(`^(\d+[ymdh])+$`)

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if !durationRe.MatchString(s) {
		return fmt.Errorf("duration %q: use numbers with y, m, d or h, e.g. 1y6m or 30d", s)
	}
	var out Duration
	num := ""
	for _, r := range s {
		if r >= '0' && r <= '9' {
			num += string(r)
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("duration %q: %v", s, err)
		}
		switch r {
		case 'y':
			out.Years += n
		case 'm':
			out.Months += n
		case 'd':
			out.Days += n
		case 'h':
			out.Hours += n
		}
		num = ""
	}
	*d = out
	return nil
}

// IsZero reports whether d is empty.
func (d Duration) IsZero() bool { return d == Duration{} }

// String formats d as it is written.
func (d Duration) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n int
		u string
	}{{d.Years, "y"}, {d.Months, "m"}, {d.Days, "d"}, {d.Hours, "h"}} {
		if p.n > 0 {
			fmt.Fprintf(&b, "%d%s", p.n, p.u)
		}
	}
	return b.String()
}
