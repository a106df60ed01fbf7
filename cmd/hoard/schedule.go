package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/report"
)

type scheduleOptions struct {
	name, unitDir, onCalendar, envFile, user string
	delay                                    time.Duration
	dryRun                                   bool
}

func scheduleCommand(g *globals) *cli.Command {
	o := &scheduleOptions{}
	return &cli.Command{
		Name:  "schedule",
		Usage: "write systemd service and timer units that run `hoard run` on a schedule, and print the crontab line",
		Description: "The units run `hoard --config FILE run` as a oneshot service at low CPU and I/O priority, with the\n" +
			"secrets (HOARD_PASSWORD_FILE, AWS_*, ...) from --env-file. After writing them:\n" +
			"  systemctl daemon-reload && systemctl enable --now NAME.timer\n" +
			"--dry-run prints the units and the crontab line instead of writing anything.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Value: "hoard", Destination: &o.name, Usage: "unit name (NAME.service, NAME.timer)"},
			&cli.StringFlag{Name: "unit-dir", Value: "/etc/systemd/system", Destination: &o.unitDir, Usage: "where to write the units"},
			&cli.StringFlag{Name: "on-calendar", Value: "daily", Destination: &o.onCalendar, Usage: "when to run (a systemd calendar expression, e.g. \"*-*-* 03:00:00\")"},
			&cli.DurationFlag{Name: "randomized-delay", Value: 30 * time.Minute, Destination: &o.delay, Usage: "start up to this much later, at random"},
			&cli.StringFlag{Name: "env-file", Value: "/etc/hoard/hoard.env", Destination: &o.envFile, Usage: "environment file with the secrets (KEY=VALUE lines, mode 0600)"},
			&cli.StringFlag{Name: "user", Destination: &o.user, Usage: "run as this user (default: root)"},
			&cli.BoolFlag{Name: "dry-run", Destination: &o.dryRun, Usage: "print, do not write"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("schedule takes no arguments")
			}
			return runSchedule(g, o)
		},
	}
}

func runSchedule(g *globals, o *scheduleOptions) error {
	if g.cfg == nil {
		return usagef("schedule needs a config file (--config or ./hoard.toml): the units run `hoard run` over it")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return err
	}
	envFile, err := filepath.Abs(o.envFile)
	if err != nil {
		return err
	}
	s := report.Schedule{Name: o.name, Binary: bin, ConfigFile: g.cfg.File, EnvFile: envFile,
		OnCalendar: o.onCalendar, Delay: o.delay, User: o.user}
	if err := s.Validate(); err != nil {
		return usagef("schedule: %v", err)
	}
	service, timer := s.Service(), s.Timer()
	cron := s.Crontab(17, 3)
	if o.dryRun {
		fmt.Fprintf(g.stdout, "# %s\n%s\n# %s\n%s\n# crontab line (crontab -e), if there is no systemd:\n%s\n",
			filepath.Join(o.unitDir, o.name+".service"), service, filepath.Join(o.unitDir, o.name+".timer"), timer, cron)
		return nil
	}
	for name, body := range map[string]string{o.name + ".service": service, o.name + ".timer": timer} {
		p := filepath.Join(o.unitDir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		fmt.Fprintf(g.stdout, "wrote %s\n", p)
	}
	if _, err := os.Stat(envFile); err != nil {
		g.log.Warn("the environment file does not exist yet: put the secrets there (mode 0600) before the timer runs", "file", envFile)
	}
	fmt.Fprintf(g.stdout, "now: systemctl daemon-reload && systemctl enable --now %s.timer\nwithout systemd, this crontab line does the same:\n%s\n", o.name, cron)
	return nil
}
