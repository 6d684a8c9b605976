package web

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// ErrOrigin: a public origin that is not scheme://host[:port] as a browser sends it.
var ErrOrigin = errors.New("use scheme://host[:port] with scheme http or https and no path, query or fragment, " +
	"as the browser's address bar shows the pages (e.g. https://records.example.org)")

// hostPattern is a DNS name in ASCII (an internationalized name in its xn-- form).
var hostPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// ParseOrigin checks that s is an origin, scheme://host[:port] with scheme http or
// https, a DNS name or IP address, no user, path (not even "/"), query or fragment,
// and returns it as a browser serializes it (its Origin header, location.origin):
// lowercase, an IPv6 address in brackets, the scheme's default port left out.
// Anything else is ErrOrigin.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#") {
		return "", ErrOrigin
	}
	host := strings.ToLower(u.Hostname())
	ip := net.ParseIP(host)
	if ip == nil && !hostPattern.MatchString(host) {
		return "", ErrOrigin
	}
	if ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	port := u.Port()
	if port == "" {
		return u.Scheme + "://" + host, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", ErrOrigin
	}
	if (u.Scheme == "http" && n == 80) || (u.Scheme == "https" && n == 443) {
		return u.Scheme + "://" + host, nil
	}
	return u.Scheme + "://" + host + ":" + strconv.FormatUint(n, 10), nil
}

// origin is scheme://host of the pages as the browser reached them: the configured
// public origin when there is one (a TLS-terminating proxy in front: r's own scheme
// and Host are the proxy's hop, not the browser's), else as r reached the node.
// X-Forwarded-* headers are never read: any client can send them.
func (s *Server) origin(r *http.Request) string {
	if s.cfg.PublicOrigin != "" {
		return s.cfg.PublicOrigin
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// sameOrigin reports whether r's Origin is the pages' origin (s.origin) and its
// Sec-Fetch-Site, when sent, says same-origin. A POST without Origin is refused:
// every browser that runs the pages sends it.
func (s *Server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	return r.Header.Get("Origin") == s.origin(r)
}

// secureOrigin reports whether the public origin is https: the browser then reaches
// the pages over TLS whatever the hop to the node is, and cookies are Secure.
func secureOrigin(publicOrigin string) bool { return strings.HasPrefix(publicOrigin, "https://") }
