package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/client"
)

// ingester is who may ingest through the API (POST /fhir/Bundle).
var ingester = tokenRole{"clinician or admin", []string{"clinician", "admin"}}

// ingestWait bounds an ingest through the API: the node's own deadline for it is 5
// minutes by default (api.DefaultIngestTimeout); the CLI waits a little longer so that
// the node's answer, not the CLI's impatience, says what happened.
const ingestWait = 6 * time.Minute

// apiPut is `record put --patient ID`: an ingest through a running node's API, which
// registers the record on the chain with the custody named here (or the chain's).
type apiPut struct {
	patient    string
	custodians []string
	threshold  int
}

func (p *apiPut) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.patient, "patient", "", "ingest through the node's API and register the record for this patient ID (64 hex digits)")
	cmd.Flags().StringSliceVar(&p.custodians, "custodian", nil, "with --patient: the record's custodians (hospital IDs, this node's among them; default: the chain's)")
	cmd.Flags().IntVar(&p.threshold, "threshold", 0, "with --patient: how many custodians' key shares rebuild the key, 1 ≤ K ≤ custodians (default: the chain's)")
}

// chosen reports whether the command line asks for an ingest through the API.
func (p *apiPut) chosen(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("patient") || cmd.Flags().Changed("custodian") || cmd.Flags().Changed("threshold")
}

// query checks the command line and is POST /fhir/Bundle's query. Nothing is sent
// for a command line it refuses.
func (p *apiPut) query(cmd *cobra.Command) (url.Values, error) {
	if p.patient == "" {
		return nil, errors.New("record put: --custodian and --threshold name a registered record's custody: give --patient ID (an ingest through the node's API)")
	}
	pid := consent.PatientID(strings.TrimPrefix(p.patient, "Patient/"))
	if !pid.Valid() {
		return nil, fmt.Errorf("record put: --patient %q is not a patient ID: 64 lowercase hex digits", consent.Truncate(p.patient, 80))
	}
	q := url.Values{"patient": {string(pid)}}
	for _, c := range p.custodians {
		if c = strings.TrimSpace(c); c == "" {
			return nil, errors.New("record put: --custodian is empty: name a hospital ID")
		}
		q.Add("custodian", c)
	}
	if cmd.Flags().Changed("threshold") {
		if p.threshold < 1 || (len(p.custodians) > 0 && p.threshold > len(p.custodians)) {
			return nil, fmt.Errorf("record put: --threshold %d of %d custodians: want 1 ≤ threshold ≤ custodians", p.threshold, len(p.custodians))
		}
		q.Set("threshold", strconv.Itoa(p.threshold))
	}
	return q, nil
}

// run ingests file through the API and prints the record, its CID and its custody.
func (p *apiPut) run(cmd *cobra.Command, api *apiFlags, file string) error {
	q, err := p.query(cmd)
	if err != nil {
		return err
	}
	f, err := openInput(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("record put: %s is not a regular file", file)
	}
	a, err := api.open("record put", ingester)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), ingestWait)
	defer cancel()
	var doc fhir.DocumentReference
	body := client.Body{Type: "application/fhir+json", Size: fi.Size(), Reader: f}
	if err := a.Post(ctx, "/fhir/Bundle", q, body, &doc); err != nil {
		return fmt.Errorf("record put: %w", err)
	}
	id := consent.RecordID(doc.ID)
	if !id.Valid() {
		return fmt.Errorf("record put: the API answered a record ID %q that is not one", consent.Truncate(doc.ID, 80))
	}
	var st consent.CustodyStatus
	if err := a.Get(ctx, "/records/"+string(id)+"/custody", nil, &st); err != nil {
		return fmt.Errorf("record put: record %s registered; its custody could not be read: %w", id, err)
	}
	printCustody(cmd.OutOrStdout(), &st)
	fmt.Fprintf(cmd.OutOrStdout(), "cid          %s\n", cidOf(doc))
	return nil
}

// cidOf is the ciphertext's CID a DocumentReference names (ipfs://CID), or "-".
func cidOf(d fhir.DocumentReference) string {
	for _, i := range d.Identifier {
		if c, ok := strings.CutPrefix(i.Value, "ipfs://"); ok {
			return c
		}
	}
	return "-"
}
