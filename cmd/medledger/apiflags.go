package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/client"
)

// Role-scoped reads (a patient's consents, the access log, the accounting, the
// emergency queue) go through a node's API with a bearer token, which checks the
// token's role; CometBFT's RPC (--node) answers only the chain's public reads and
// takes txs.

// apiFlags are --api and --token-file.
type apiFlags struct {
	url, tokenFile string
}

func addAPIFlags(cmd *cobra.Command) *apiFlags {
	f := &apiFlags{}
	cmd.Flags().StringVar(&f.url, "api", os.Getenv("MEDLEDGER_API"), "the node's HTTP API, http://host:port (or $MEDLEDGER_API)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "a file with the API bearer token, or a home's keys/api-tokens.json (default: $MEDLEDGER_TOKEN)")
	return f
}

// tokenRole names who may make a read, for the error that says a token is needed.
type tokenRole struct {
	name  string   // e.g. "privacy-officer"
	roles []string // the roles whose tokens the API accepts, in order of preference
}

var (
	privacyOfficer = tokenRole{"privacy-officer", []string{"privacy-officer", "admin"}}
	staff          = tokenRole{"staff (clinician, privacy-officer or admin)", []string{"clinician", "privacy-officer", "admin"}}
)

// open is the API with a token for role; what names the command in errors.
func (f *apiFlags) open(what string, role tokenRole) (*client.API, error) {
	token, err := f.token(what, role)
	if err != nil {
		return nil, err
	}
	if f.url == "" {
		return nil, fmt.Errorf("%s: needs the node's API: --api URL or $MEDLEDGER_API", what)
	}
	return client.NewAPI(f.url, token)
}

// given reports whether a token was given (--token-file or $MEDLEDGER_TOKEN).
func (f *apiFlags) given() bool { return f.tokenFile != "" || os.Getenv("MEDLEDGER_TOKEN") != "" }

// token reads --token-file, else $MEDLEDGER_TOKEN. The file holds the token, or is a
// home's keys/api-tokens.json ({"role": "token", …}), from which the first of role's
// roles is taken.
func (f *apiFlags) token(what string, role tokenRole) (string, error) {
	if f.tokenFile == "" {
		if t := strings.TrimSpace(os.Getenv("MEDLEDGER_TOKEN")); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("%s: needs a %s token: --token-file or $MEDLEDGER_TOKEN", what, role.name)
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return "", fmt.Errorf("%s: token file: %w", what, err)
	}
	text := strings.TrimSpace(string(b))
	if !strings.HasPrefix(text, "{") {
		if text == "" {
			return "", fmt.Errorf("%s: token file %s is empty", what, f.tokenFile)
		}
		return text, nil
	}
	var byRole map[string]string
	if err := json.Unmarshal(b, &byRole); err != nil {
		return "", fmt.Errorf("%s: token file %s: %w", what, f.tokenFile, err)
	}
	for _, r := range role.roles {
		if t := byRole[r]; t != "" {
			return t, nil
		}
	}
	return "", fmt.Errorf("%s: token file %s has no %s token", what, f.tokenFile, role.name)
}
