package node

import (
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
)

// apiLimits are the [api] section's limits as the API takes them (zero: default).
func apiLimits(c *home.APIConfig) api.Limits {
	t := c.Timeouts()
	return api.Limits{
		RequestTimeout:    t["request_timeout"],
		IngestTimeout:     t["ingest_timeout"],
		ReadHeaderTimeout: t["read_header_timeout"],
		ReadTimeout:       t["read_timeout"],
		WriteTimeout:      t["write_timeout"],
		IdleTimeout:       t["idle_timeout"],
		MaxHeaderBytes:    c.MaxHeaderBytes,
		MaxConns:          c.MaxConns,
		ClientRate:        c.ClientRate,
		ClientBurst:       c.ClientBurst,
		PatientRate:       c.PatientRate,
		PatientBurst:      c.PatientBurst,
	}
}
