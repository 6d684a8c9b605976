// Package medledger embeds the sample data that `medledger demo` runs on, so the demo
// works from a plain clone or a bare binary: four Synthea patient Bundles (one from
// each Synthea generation and Bundle shape in testdata/README.md) and one invalid
// Bundle from the HL7 validator's test cases.
package medledger

import "embed"

// SampleData holds the demo's FHIR files under testdata/fhir/.
//
//go:embed testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json
//go:embed testdata/fhir/synthea/Roland928_Nienow652_13b1a0f2-dceb-37a2-f32b-f0ca6e3b9925.json
//go:embed testdata/fhir/synthea/Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json
//go:embed testdata/fhir/synthea/Cleo_Friesen_59907280-53b1-4677-92b9-83c1332a08b3.json
//go:embed testdata/fhir/invalid/bundle-duplicate-id.json
var SampleData embed.FS

// SampleBundles lists the patient Bundles in SampleData.
var SampleBundles = []string{
	"testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
	"testdata/fhir/synthea/Roland928_Nienow652_13b1a0f2-dceb-37a2-f32b-f0ca6e3b9925.json",
	"testdata/fhir/synthea/Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json",
	"testdata/fhir/synthea/Cleo_Friesen_59907280-53b1-4677-92b9-83c1332a08b3.json",
}

// SampleInvalidBundle is a Bundle every FHIR validator must reject (relative fullUrl).
const SampleInvalidBundle = "testdata/fhir/invalid/bundle-duplicate-id.json"
