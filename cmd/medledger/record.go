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
	cmd.AddCommand(recordPutCmd(), recordGetCmd(), recordCustodyCmd())
	return cmd
}

func recordPutCmd() *cobra.Command {
	var forFile, keyOut, progress string
	cmd := &cobra.Command{
		Use:   "put FILE",
		Short: "Validate a FHIR R4 Bundle, encrypt it under a fresh key and store the ciphertext",
		Long: `Validates FILE as a FHIR R4 Bundle, encrypts it under a fresh record key (DEK),
stores the ciphertext in this node's block store (pinned), keeps the DEK wrapped to this
hospital, and writes a key file with the DEK wrapped for the recipient (--for a hospital's
public key file; this hospital by default). Prints the record ID and the ciphertext's CID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var to crypto.WrapPublicKey
			recipient := "this hospital"
			if forFile != "" {
				pub, err := crypto.ReadHospitalPublic(forFile)
				if err != nil {
					return err
				}
				to, recipient = pub.Wrap, pub.Name
			}
			h, err := home.Load(homeFlag(cmd))
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fileErr(args[0], err)
			}
			defer f.Close()
			store, err := storage.Open(cmd.Context(), h.Path(home.BlocksDir))
			if err != nil {
				return err
			}
			defer store.Close()
			bar := newProgressBar(cmd.ErrOrStderr(), "encrypting", progress)
			in, err := node.Ingest(cmd.Context(), h, store, f, to, bar.update)
			bar.done()
			if err != nil {
				return err
			}
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
		},
	}
	cmd.Flags().StringVar(&forFile, "for", "", "public key file of the hospital to wrap the key for (default: this hospital)")
	cmd.Flags().StringVarP(&keyOut, "key-out", "k", "", "where to write the key file (default RECORD-ID.key.json)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress bar: auto (on a terminal, for large files), always, never")
	return cmd
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

func fileErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file", path)
	}
	return err
}
