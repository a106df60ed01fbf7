package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hoard-backup/hoard/repo/crypto"
)

// keyJSON is one key file in `hoard --json key list`.
type keyJSON struct {
	ID         string          `json:"id"`
	InUse      bool            `json:"in_use"`
	Kind       string          `json:"kind,omitempty"` // empty when this key cannot open the key file
	Protection string          `json:"protection"`     // "passphrase", "gpg", or "" when damaged
	S2K        []string        `json:"s2k,omitempty"`
	Recipients []recipientJSON `json:"recipients,omitempty"`
	Created    *time.Time      `json:"created,omitempty"`
	Host       string          `json:"host,omitempty"`
	Username   string          `json:"username,omitempty"`
	// The data key the key file holds, whether it is signed by it, and
	// whether it is the trusted one (pinned, or given): absent when this
	// key cannot open the key file.
	DataKey string `json:"data_key_fingerprint,omitempty"`
	Signed  *bool  `json:"signed,omitempty"`
	Trusted *bool  `json:"trusted,omitempty"`
	Writer  string `json:"writer,omitempty"` // the writer ID its snapshots carry
	Error   string `json:"error,omitempty"`
}

type recipientJSON struct {
	KeyID string `json:"key_id"`        // the (sub)key ID in the key file, 16 hex digits
	Key   string `json:"key,omitempty"` // "FINGERPRINT (user ID)" when known to the key in use
}

func runKeyList(ctx context.Context, g *globals) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{skipUntrusted: true})
	if err != nil {
		return err
	}
	defer done()
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	u, _ := r.Unlocker().(crypto.KeyDescriber)
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		j := keyJSON{ID: k.Name, InUse: k.InUse, Kind: string(k.Kind), Host: k.Host, Username: k.Username}
		if k.Opened {
			c := k.Created
			j.Created = &c
		}
		if k.Fingerprint != "" {
			signed, trusted := k.Signed, k.Trusted
			j.DataKey, j.Signed, j.Trusted, j.Writer = k.Fingerprint, &signed, &trusted, k.SnapshotWriterID
		}
		if k.Err != nil {
			j.Error = k.Err.Error()
		}
		if p := k.Protection; p != nil {
			for _, s := range p.Passphrases {
				j.Protection = "passphrase"
				j.S2K = append(j.S2K, s.S2K)
			}
			for _, rc := range p.Recipients {
				j.Protection = "gpg"
				rj := recipientJSON{KeyID: rc.KeyIDString()}
				if u != nil {
					rj.Key, _ = u.DescribeKey(ctx, rc.KeyID)
				}
				j.Recipients = append(j.Recipients, rj)
			}
		}
		out = append(out, j)
	}
	if g.json {
		return printJSON(g.stdout, out)
	}
	unknown := false
	signedNote := "unsigned: a version 1 key file; hoard key add writes a signed one"
	if r.KeySigned() {
		signedNote = "signed by it"
	}
	fmt.Fprintf(g.stdout, "data key fingerprint: %s (trusted on this machine; key in use %s)\n", r.DataKeyFingerprint(), signedNote)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tKIND\tPROTECTION\tDATA KEY\tCREATED\tHOST\tUSER")
	for _, j := range out {
		mark := " "
		if j.InUse {
			mark = "*"
		}
		kind, created := j.Kind, "-"
		if kind == "" {
			kind, unknown = "?", true
		}
		if j.Created != nil {
			created = j.Created.Local().Format("2006-01-02 15:04")
		}
		var prot []string
		for _, s := range j.S2K {
			prot = append(prot, "passphrase ("+s+" S2K)")
		}
		for _, rc := range j.Recipients {
			if rc.Key != "" {
				prot = append(prot, "GPG "+rc.Key)
			} else {
				prot = append(prot, "GPG key 0x"+rc.KeyID)
			}
		}
		if j.Error != "" {
			prot = append(prot, "unusable: "+j.Error)
		}
		dataKey := "-"
		switch {
		case j.DataKey == "":
		case !*j.Trusted:
			dataKey = "UNTRUSTED " + j.DataKey
		case *j.Signed:
			dataKey = "trusted, signed"
		default:
			dataKey = "trusted, unsigned"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, shortName(j.ID), kind, strings.Join(prot, ", "), dataKey, created, dash(j.Host), dash(j.Username))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if unknown {
		fmt.Fprintln(g.stdout, "kind ? means this key cannot open that key file (another passphrase, or someone else's GPG key)")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortName returns the first 8 characters of a file name.
func shortName(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}
