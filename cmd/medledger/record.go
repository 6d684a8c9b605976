package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/storage"
)

func recordCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "record", Short: "Ingest and read encrypted FHIR records"}
	cmd.AddCommand(recordPutCmd(), recordGetCmd(), recordCustodyCmd(), recordHandOverCmd())
	return cmd
}

func recordPutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "put [--patient ID [--custodian ID ...] [--threshold K]] FILE",
		Short: "Seal a FHIR R4 Bundle locally, or (--patient) ingest it through a running node's API and register it on the chain",
		Long: `Two modes.

Without --patient: a local seal, offline. Validates FILE as a FHIR R4 Bundle, encrypts
it under a fresh record key (DEK), stores the ciphertext in this home's block store
(pinned), keeps the DEK wrapped to this hospital, and writes a key file with the DEK
wrapped for the recipient (--for a hospital's public key file; this hospital by
default). Prints the record ID and the ciphertext's CID. Nothing is registered on the
chain: no other hospital can find or read the record.

With --patient ID: an ingest through the node's HTTP API (POST /fhir/Bundle; --api or
$MEDLEDGER_API, else the home's api.listen; a clinician's or admin's token from
--token-file or $MEDLEDGER_TOKEN). The node validates, encrypts and stores the Bundle
and registers the record on the chain for the patient, its key held by the record's
custodians: those named with --custodian (repeated or comma-separated; this node's
hospital among them) with --threshold K of them needed to rebuild the key
(1 ≤ K ≤ custodians), else the chain's defaults. It returns once the record is
available (K custodians accepted custody; the others' offers go on at the node) or
every custodian has answered, and prints the record ID, its custody and its CID. A refused ingest (an
unknown custodian, a threshold out of range, a file that is not a valid Bundle) stores
and registers nothing.`,
		Args: cobra.ExactArgs(1),
	}
	api := addAPIFlags(cmd)
	var local localSeal
	var put apiPut
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !put.chosen(cmd) {
			return local.run(cmd, args[0])
		}
		if local.forFile != "" || local.keyOut != "" {
			return errors.New("record put: --for and --key-out are for a local seal; an ingest through the API (--patient) leaves the key with the record's custodians")
		}
		return put.run(cmd, api, args[0])
	}
	put.addFlags(cmd)
	cmd.Flags().StringVar(&local.forFile, "for", "", "local seal: public key file of the hospital to wrap the key for (default: this hospital)")
	cmd.Flags().StringVarP(&local.keyOut, "key-out", "k", "", "local seal: where to write the key file (default RECORD-ID.key.json)")
	cmd.Flags().StringVar(&local.progress, "progress", "auto", "local seal: progress bar: auto (on a terminal, for large files), always, never")
	return cmd
}

// localSeal is `record put` without --patient: seal into this home's block store and
// write a key file; nothing is registered on the chain.
type localSeal struct {
	forFile, keyOut, progress string
}

func (l *localSeal) run(cmd *cobra.Command, file string) error {
	var to crypto.WrapPublicKey
	recipient := "this hospital"
	if l.forFile != "" {
		pub, err := crypto.ReadHospitalPublic(l.forFile)
		if err != nil {
			return err
		}
		to, recipient = pub.Wrap, pub.Name
	}
	h, err := home.Load(homeFlag(cmd))
	if err != nil {
		return err
	}
	f, err := openInput(file)
	if err != nil {
		return err
	}
	defer f.Close()
	store, err := storage.Open(cmd.Context(), h.Path(home.BlocksDir))
	if err != nil {
		return err
	}
	defer store.Close()
	bar := newProgressBar(cmd.ErrOrStderr(), "encrypting", l.progress)
	in, err := node.Ingest(cmd.Context(), h, store, f, to, bar.update)
	bar.done()
	if err != nil {
		return err
	}
	keyOut := l.keyOut
	if keyOut == "" {
		keyOut = in.ID.String() + ".key.json"
	}
	if err := in.Key.Write(keyOut); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "record   %s\n", in.ID)
	fmt.Fprintf(out, "cid      %s\n", in.CID)
	fmt.Fprintf(out, "bytes    %d (ciphertext)\n", in.Size)
	fmt.Fprintf(out, "key      %s (wrapped for %s)\n", keyOut, recipient)
	return nil
}

func recordGetCmd() *cobra.Command {
	var keyFile, out, progress string
	cmd := &cobra.Command{
		Use:   "get CID --key FILE",
		Short: "Read a record's ciphertext from this node's block store and decrypt it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cid.Decode(args[0])
			if err != nil {
				return fmt.Errorf("%q is not a CID", args[0])
			}
			if keyFile == "" {
				return errors.New("--key FILE is required (the key file `record put` wrote)")
			}
			kf, err := node.ReadKeyFile(keyFile)
			if err != nil {
				return err
			}
			h, err := home.Load(homeFlag(cmd))
			if err != nil {
				return err
			}
			err = get(cmd, h, c, kf, out, newProgressBar(cmd.ErrOrStderr(), "decrypting", progress))
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return fmt.Errorf("CID %s is not in this node's block store", c)
			case errors.Is(err, crypto.ErrUnwrap):
				return fmt.Errorf("key file %s is not for this hospital, or was altered", keyFile)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "key file with the record's DEK wrapped for this hospital")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the Bundle here (default stdout)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress bar: auto, always, never")
	return cmd
}

// get decrypts record c into out, or to stdout through a temporary file, so that
// nothing unauthenticated is ever written where the user asked.
func get(cmd *cobra.Command, h *home.Home, c cid.Cid, kf *node.KeyFile, out string, bar *progressBar) error {
	defer bar.done()
	store, err := storage.Open(cmd.Context(), h.Path(home.BlocksDir))
	if err != nil {
		return err
	}
	defer store.Close()
	r, err := store.Open(cmd.Context(), c)
	if err != nil {
		return err
	}
	defer r.Close()
	plain, err := node.OpenRecord(h, c, kf, node.NewProgressReader(r, int64(r.Size()), bar.update))
	if err != nil {
		return err
	}
	if out != "" && out != "-" {
		return node.WriteFileAtomically(out, plain)
	}
	tmp, err := os.MkdirTemp("", "medledger-get-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "bundle.json")
	if err := node.WriteFileAtomically(path, plain); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteTo(cmd.OutOrStdout())
	return err
}

// openInput opens a command's input file; a missing one is a one-line error.
func openInput(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return f, nil
}

func fileErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file", path)
	}
	return err
}
