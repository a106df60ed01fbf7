package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/hoard-backup/hoard/config"
)

// loadConfig reads the config file: --config or HOARD_CONFIG (which must
// exist), else ./hoard.toml if there is one. Command-line flags and HOARD_*
// variables win over the file: it fills in only what they leave unset.
func (g *globals) loadConfig() error {
	file := g.configFile
	if file == "" {
		if _, err := os.Stat(config.DefaultFile); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		file = config.DefaultFile
	}
	c, err := config.Load(file)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return usageError{"config " + ce.Error()}
		}
		return usageError{err.Error()} // config.Load's errors say "config: " already
	}
	g.cfg = c
	r := c.Repository
	if g.repo == "" {
		g.repo = r.Location
	}
	if g.passwordFile == "" && g.passwordCommand == "" && g.gpgSecretKey == "" && !g.gpgAgent {
		g.passwordFile, g.passwordCommand = r.PasswordFile, r.PasswordCommand
		g.gpgSecretKey, g.gpgAgent = r.GPGSecretKey, r.GPGAgent
	}
	if g.gpgPassphraseFile == "" {
		g.gpgPassphraseFile = r.GPGPassphraseFile
	}
	return nil
}

// needConfig returns the config file or a usage error saying how to give one.
func (g *globals) needConfig() (*config.Config, error) {
	if g.cfg == nil {
		return nil, usagef("no config file: give --config FILE, set HOARD_CONFIG, or put %s in the working directory", config.DefaultFile)
	}
	return g.cfg, nil
}
