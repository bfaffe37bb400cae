package main

import (
	"context"
	"flag"

	"github.com/linkflow/linkflow/admin"
)

// runOps parses linkflow status and linkflow dlq list|replay; package
// admin (with monitor) does the work.
func runOps(ctx context.Context, name string, args []string) error {
	if name == "dlq" {
		sub, rest, err := subcommand(args, "dlq", "list", "replay")
		if err != nil {
			return err
		}
		name, args = "dlq "+sub, rest
	}
	c := admin.OpsCommand{Name: name}
	return adminCommand(ctx, name, args, func(fs *flag.FlagSet) {
		fs.StringVar(&c.NATS.URL, "nats-url", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated")
		fs.StringVar(&c.NATS.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
		fs.StringVar(&c.NATS.CAFile, "nats-ca", "", "PEM file of the certificates that verify the NATS servers'")
		fs.StringVar(&c.NATS.CertFile, "nats-cert", "", "client certificate (PEM) for mutual TLS with NATS; with --nats-key")
		fs.StringVar(&c.NATS.KeyFile, "nats-key", "", "key of --nats-cert (PEM)")
		fs.StringVar(&c.Probes, "probe", "", "status: processes whose /readyz to check, role=host:port,... (their metrics addresses)")
		fs.BoolVar(&c.JSON, "json", false, "status, dlq list: write JSON")
		fs.IntVar(&c.Limit, "limit", 100, "dlq list: show the newest N")
		fs.Uint64Var(&c.Seq, "seq", 0, "dlq replay: the dead letter's sequence (see dlq list)")
		fs.BoolVar(&c.All, "all", false, "dlq replay: every dead letter")
	}, func(a *admin.Admin, _ *flag.FlagSet) error { return a.RunOps(ctx, c) })
}
