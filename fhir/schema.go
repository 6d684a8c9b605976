package fhir

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
)

// The HL7 FHIR R4 JSON schema (Draft-06, id http://hl7.org/fhir/json-schema/4.0),
// gzipped, unmodified.
//
//go:embed schema/fhir.schema.json.gz
var schemaGzip []byte

// loadSchema gunzips and compiles the embedded schema on first use. It is
// the package's only state, and immutable once built.
var loadSchema = sync.OnceValues(func() (*schema, error) {
	s, err := compileSchema(schemaGzip)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	return s, nil
})

// schema is the compiled R4 schema: every definition, and the resource
// definitions by resourceType (the discriminator of the root oneOf and of
// ResourceList, used instead of trying the 146 alternatives).
type schema struct {
	defs      map[string]*def
	resources map[string]*def
}

// defKind says how a definition validates a value.
type defKind uint8

const (
	defPrimitive defKind = iota // a JSON string, number or boolean, maybe with a pattern
	defComplex                  // an object with known properties (additionalProperties false)
	defResource                 // ResourceList: any resource, by its resourceType
	defCode                     // an inline enum
)

// jsonType is the JSON type a primitive must have.
type jsonType uint8

const (
	jsonString jsonType = iota
	jsonNumber
	jsonBoolean
)

// def is one compiled definition (or an inline property schema).
type def struct {
	name     string // definition name, or the FHIR primitive of an inline schema
	kind     defKind
	json     jsonType
	pat      *pattern
	enum     []string
	props    map[string]*prop
	required []requirement
	check    func(*walker, *node) // rules beyond the schema, run after the properties
}

// prop is one property of a complex definition.
type prop struct {
	array bool
	def   *def
}

// requirement is an element with minimum cardinality 1: present when any
// of anyOf is (the element, its _element companion, or any type of a
// choice element).
type requirement struct {
	name  string
	anyOf []string
}

// rawDef is the subset of JSON Schema the R4 schema uses.
type rawDef struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Pattern    string             `json:"pattern"`
	Enum       []string           `json:"enum"`
	Const      *string            `json:"const"`
	Items      *rawDef            `json:"items"`
	Properties map[string]*rawDef `json:"properties"`
	Required   []string           `json:"required"`
	OneOf      []*rawDef          `json:"oneOf"`
}

type rawSchema struct {
	Discriminator struct {
		PropertyName string            `json:"propertyName"`
		Mapping      map[string]string `json:"mapping"`
	} `json:"discriminator"`
	Definitions map[string]*rawDef `json:"definitions"`
}

func compileSchema(gz []byte) (*schema, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var raw rawSchema
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	c := &compiler{raw: &raw, s: &schema{defs: map[string]*def{}, resources: map[string]*def{}}, pats: map[string]*pattern{}}
	return c.s, c.compile()
}

// compiler turns rawSchema into a schema.
type compiler struct {
	raw   *rawSchema
	s     *schema
	pats  map[string]*pattern
	prims []string // names of primitive definitions, for inline schemas
}

func (c *compiler) compile() error {
	if c.raw.Discriminator.PropertyName != "resourceType" {
		return fmt.Errorf("root discriminator is %q, want resourceType", c.raw.Discriminator.PropertyName)
	}
	names := sortedKeys(c.raw.Definitions)
	for _, name := range names {
		c.s.defs[name] = &def{name: name}
		if c.raw.Definitions[name].Properties == nil && c.raw.Definitions[name].OneOf == nil {
			c.prims = append(c.prims, name)
		}
	}
	for _, name := range names {
		if err := c.define(c.s.defs[name], c.raw.Definitions[name]); err != nil {
			return fmt.Errorf("definition %s: %w", name, err)
		}
	}
	for _, rt := range sortedKeys(c.raw.Discriminator.Mapping) {
		d, err := c.ref(c.raw.Discriminator.Mapping[rt])
		if err != nil {
			return err
		}
		c.s.resources[rt] = d
	}
	if err := c.addRequired(); err != nil {
		return err
	}
	attachChecks(c.s)
	return nil
}

// define fills d from its raw form.
func (c *compiler) define(d *def, r *rawDef) error {
	switch {
	case r.OneOf != nil:
		d.kind = defResource
		return nil
	case r.Properties != nil:
		return c.complex(d, r)
	}
	return c.primitive(d, r)
}

func (c *compiler) complex(d *def, r *rawDef) error {
	d.kind = defComplex
	d.props = make(map[string]*prop, len(r.Properties))
	for name, rp := range r.Properties {
		p, err := c.prop(name, rp)
		if err != nil {
			return fmt.Errorf("property %s: %w", name, err)
		}
		d.props[name] = p
	}
	for _, name := range r.Required {
		if d.props[name] == nil {
			return fmt.Errorf("required %s is not a property", name)
		}
		d.required = append(d.required, requirement{name: name, anyOf: []string{name}})
	}
	return nil
}

func (c *compiler) prop(name string, r *rawDef) (*prop, error) {
	if r.Items != nil {
		if r.Type != "array" {
			return nil, fmt.Errorf("items without type array")
		}
		p, err := c.prop(name, r.Items)
		if err != nil || p.array {
			return nil, fmt.Errorf("bad array items: %v", err)
		}
		p.array = true
		return p, nil
	}
	switch {
	case r.Ref != "":
		d, err := c.ref(r.Ref)
		return &prop{def: d}, err
	case r.Enum != nil:
		enum := r.Enum
		if slices.Contains(enum, "4.0.0") && !slices.Contains(enum, "4.0.1") {
			// The published R4 schema predates the R4 technical correction: its
			// FHIRVersion enums stop at 4.0.0, but R4 is 4.0.1.
			enum = append(slices.Clone(enum), "4.0.1")
		}
		return &prop{def: &def{name: "code", kind: defCode, enum: enum}}, nil
	case r.Const != nil:
		return &prop{def: &def{name: "code", kind: defCode, enum: []string{*r.Const}}}, nil
	}
	d := &def{name: c.inlinePrimitive(name)}
	return &prop{def: d}, c.primitive(d, r)
}

func (c *compiler) ref(ref string) (*def, error) {
	name, ok := strings.CutPrefix(ref, "#/definitions/")
	if d := c.s.defs[name]; ok && d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("unresolvable $ref %q", ref)
}

func (c *compiler) primitive(d *def, r *rawDef) error {
	d.kind = defPrimitive
	switch r.Type {
	case "string", "":
		d.json = jsonString // "" is xhtml, which FHIR JSON carries as a string
	case "number":
		d.json = jsonNumber
	case "boolean":
		d.json = jsonBoolean
	default:
		return fmt.Errorf("unsupported type %q", r.Type)
	}
	if r.Pattern == "" || d.json == jsonBoolean {
		return nil // JSON Schema applies patterns to strings; numbers see their literal
	}
	p, ok := c.pats[r.Pattern]
	if !ok {
		var err error
		if p, err = compilePattern(r.Pattern); err != nil {
			return err
		}
		c.pats[r.Pattern] = p
	}
	d.pat = p
	return nil
}

// inlinePrimitive names the FHIR primitive of an inline property schema
// from the property's type suffix ("valueDateTime" → "dateTime"), so that
// checks keyed on primitive names (base64Binary, dates) apply to it too.
func (c *compiler) inlinePrimitive(prop string) string {
	best := ""
	for _, p := range c.prims {
		suffix := strings.ToUpper(p[:1]) + p[1:]
		if strings.HasSuffix(prop, suffix) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// addRequired merges requiredElements into the definitions.
func (c *compiler) addRequired() error {
	table := requiredElements()
	for _, name := range sortedKeys(table) {
		elems := table[name]
		d := c.s.defs[name]
		if d == nil || d.kind != defComplex {
			return fmt.Errorf("required table: no complex definition %s", name)
		}
		for _, e := range elems {
			r, err := requirementFor(d, e)
			if err != nil {
				return fmt.Errorf("required table: %s.%s: %w", name, e, err)
			}
			if !slices.ContainsFunc(d.required, func(x requirement) bool { return x.name == r.name }) {
				d.required = append(d.required, r)
			}
		}
	}
	return nil
}

// requirementFor resolves "status" (or "_status") and "medication[x]"
// (any medicationCodeableConcept, medicationReference, …).
func requirementFor(d *def, elem string) (requirement, error) {
	r := requirement{name: elem}
	if base, ok := strings.CutSuffix(elem, "[x]"); ok {
		for _, name := range sortedKeys(d.props) {
			t := strings.TrimPrefix(name, "_")
			if rest, ok := strings.CutPrefix(t, base); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
				r.anyOf = append(r.anyOf, name)
			}
		}
	} else if d.props[elem] != nil {
		r.anyOf = []string{elem}
		if d.props["_"+elem] != nil {
			r.anyOf = append(r.anyOf, "_"+elem)
		}
	}
	if len(r.anyOf) == 0 {
		return r, fmt.Errorf("no such element")
	}
	return r, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
