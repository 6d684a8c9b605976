package crypto

import "path/filepath"

// A patient's key lives on the patient's own device: a directory holding its own KEK
// and the Ed25519 keyset encrypted under it.
const patientFile = "patient.keyset.json"

// CreatePatientKey generates a patient key in dir, refusing to overwrite one.
func CreatePatientKey(dir string) (*SigningKey, error) {
	kek, err := CreateKEK(filepath.Join(dir, KEKFile))
	if err != nil {
		return nil, err
	}
	k, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	if err := SaveSigningKey(filepath.Join(dir, patientFile), k, kek, "patient"); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadPatientKey reads the patient key in dir.
func LoadPatientKey(dir string) (*SigningKey, error) {
	kek, err := LoadKEK(filepath.Join(dir, KEKFile))
	if err != nil {
		return nil, err
	}
	return LoadSigningKey(filepath.Join(dir, patientFile), kek, "patient")
}
