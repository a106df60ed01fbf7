package report

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Schedule describes a periodic `hoard run`: the systemd service and timer
// units that run it, and the crontab line that does the same where there
// is no systemd.
type Schedule struct {
	Name       string        // unit name without suffix, e.g. "hoard"
	Binary     string        // absolute path of the hoard binary
	ConfigFile string        // absolute path of hoard.toml
	EnvFile    string        // absolute path of the environment file holding secrets
	OnCalendar string        // systemd calendar expression: "daily", "*-*-* 03:00:00"
	Delay      time.Duration // RandomizedDelaySec: spreads many hosts' runs
	User       string        // run as this user; empty: root
}

// Validate reports what would make units systemd refuses or a line cron
// misreads.
func (s Schedule) Validate() error {
	for what, p := range map[string]string{"binary": s.Binary, "config file": s.ConfigFile, "environment file": s.EnvFile} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("the %s must be an absolute path, not %q", what, p)
		}
		if strings.ContainsAny(p, " \t\n'\"\\%$") {
			return fmt.Errorf("the %s path %q has a space, quote, %% or $: systemd and cron would split or expand it", what, p)
		}
	}
	if s.Name == "" || strings.ContainsAny(s.Name, "/ \t\n@") {
		return fmt.Errorf("unit name %q: use letters, digits, - and _", s.Name)
	}
	if strings.ContainsAny(s.OnCalendar, "\n") || s.OnCalendar == "" {
		return fmt.Errorf("on-calendar %q is not a calendar expression", s.OnCalendar)
	}
	if strings.ContainsAny(s.User, " \t\n") {
		return fmt.Errorf("user %q", s.User)
	}
	return nil
}

// Service returns the service unit: a oneshot `hoard run` at low CPU and
// I/O priority with the secrets from an environment file. systemd never
// starts a unit that is still running, so runs do not overlap.
func (s Schedule) Service() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=hoard backup of what %s names\n", s.ConfigFile)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\nType=oneshot\n")
	if s.User != "" {
		fmt.Fprintf(&b, "User=%s\n", s.User)
	}
	fmt.Fprintf(&b, "EnvironmentFile=%s\n", s.EnvFile)
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", filepath.Dir(s.ConfigFile))
	fmt.Fprintf(&b, "ExecStart=%s --config %s run\n", s.Binary, s.ConfigFile)
	b.WriteString("Nice=10\nIOSchedulingClass=idle\nCPUSchedulingPolicy=batch\n")
	b.WriteString("# Without a terminal hoard prints no progress; its output goes to the journal.\n")
	return b.String()
}

// Timer returns the timer unit. Persistent runs a missed backup at the
// next boot; the randomized delay keeps many hosts off the storage at once.
func (s Schedule) Timer() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=Run %s.service (hoard backup) on schedule\n\n", s.Name)
	fmt.Fprintf(&b, "[Timer]\nOnCalendar=%s\nPersistent=true\n", s.OnCalendar)
	if s.Delay > 0 {
		fmt.Fprintf(&b, "RandomizedDelaySec=%d\n", int(s.Delay.Seconds()))
	}
	b.WriteString("\n[Install]\nWantedBy=timers.target\n")
	return b.String()
}

// Crontab returns a line for a user's crontab (crontab -e) that does what
// the units do: cron starts jobs with an almost empty environment, so the
// line reads the environment file itself; flock skips a run while the last
// one still holds the lock.
func (s Schedule) Crontab(minute, hour int) string {
	lock := "/run/lock/" + s.Name + ".lock"
	return fmt.Sprintf("%d %d * * * flock -n %s sh -c 'set -a; . %s; exec nice -n 10 ionice -c 3 %s --config %s run' >> /var/log/%s.log 2>&1",
		minute, hour, lock, s.EnvFile, s.Binary, s.ConfigFile, s.Name)
}
