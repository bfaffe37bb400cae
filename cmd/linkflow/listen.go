package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/linkflow/linkflow/admin"
	"github.com/linkflow/linkflow/client"
	"github.com/linkflow/linkflow/internal/embedded"
)

// runListen is `linkflow listen` (admin.Listen): dev's events unless told
// another API.
func runListen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	apiURL := fs.String("api-url", "", "the linkflow API, with --api-key (default: both of the dev of --data-dir)")
	apiKey := fs.String("api-key", "", "an API key with links:read, with --api-url (default: both of the dev of --data-dir)")
	dataDir := fs.String("data-dir", ".linkflow", "the data directory of a linkflow dev, whose API and key to use")
	cfg := admin.ListenConfig{Out: os.Stdout, Err: os.Stderr}
	fs.BoolVar(&cfg.All, "all", false, "print the events already in the log first")
	fs.BoolVar(&cfg.JSON, "json", false, "print each event's whole body too, as its webhook carries it")
	fs.DurationVar(&cfg.Every, "every", 500*time.Millisecond, "how often to ask for new events")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *apiURL == "" && *apiKey == "":
		st, err := embedded.ReadDevState(*dataDir)
		if err != nil {
			return fmt.Errorf("give --api-url and --api-key, or run it where linkflow dev keeps its data: %w", err)
		}
		*apiURL, *apiKey = st.APIURL, st.APIKey
	case *apiURL == "" || *apiKey == "":
		// One from dev and one given would send dev's key to another API,
		// or another API's key to dev.
		return errors.New("give both --api-url and --api-key (LINKFLOW_API_URL, LINKFLOW_API_KEY), or neither for linkflow dev's")
	}
	var err error
	if cfg.Client, err = client.New(client.Config{BaseURL: *apiURL, APIKey: *apiKey}); err != nil {
		return err
	}
	return admin.Listen(ctx, cfg)
}
