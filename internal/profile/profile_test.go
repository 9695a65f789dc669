package profile

import (
	"errors"
	"testing"
)

func TestResolveProfile(t *testing.T) {
	cases := []struct {
		name      string
		preset    string
		overrides []Profile
		wantErr   bool
		check     func(t *testing.T, p Profile)
	}{
		{name: "default is runbook", check: func(t *testing.T, p Profile) {
			if p.Name != "runbook" || p.ProfilePath != "/profile/me" || p.SecretVar != "AUTH_JWT_SECRET" || p.AccessTransport != TransportBearer {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "cookie preset", preset: "cookie", check: func(t *testing.T, p Profile) {
			if p.ProfilePath != "/auth/me" || p.SecretVar != "JWT_SECRET" || p.RefreshTransport != TransportCookie || p.SecondaryVar != "" {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "valine preset is the real backend", preset: "valine", check: func(t *testing.T, p Profile) {
			if p.ProfilePath != "/auth/me" || p.SecretVar != "JWT_SECRET" || p.SecondaryVar != "" || p.RefreshTransport != TransportCookie ||
				p.RefreshField != "" || p.LogFailurePattern != "me_no_token" {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "later layer wins, zero fields keep lower values", preset: "runbook",
			overrides: []Profile{{ProfilePath: "/v1/me", RejectStatus: 403}, {ProfilePath: "/v2/me"}},
			check: func(t *testing.T, p Profile) {
				if p.ProfilePath != "/v2/me" || p.RejectStatus != 403 || p.LoginPath != "/auth/login" || p.Name != "runbook+overrides" {
					t.Errorf("got %+v", p)
				}
			}},
		{name: "unknown preset", preset: "graphql", wantErr: true},
		{name: "path without slash", overrides: []Profile{{LoginPath: "auth/login"}}, wantErr: true},
		{name: "bad transport", overrides: []Profile{{AccessTransport: "header"}}, wantErr: true},
		{name: "cookie transport needs cookie name", overrides: []Profile{{AccessTransport: TransportCookie}}, wantErr: true},
		{name: "reject status must be 4xx", overrides: []Profile{{RejectStatus: 200}}, wantErr: true},
		{name: "secondary must differ", overrides: []Profile{{SecondaryVar: "AUTH_JWT_SECRET"}}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Resolve(tc.preset, tc.overrides...)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("want ErrInvalidProfile, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

func TestLoadProfileFile(t *testing.T) {
	pf, err := LoadFile("testdata/cookie-override.yml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Resolve(pf.Preset, pf.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if p.ProfilePath != "/api/auth/me" || p.RejectStatus != 403 || p.RejectBody != "Unauthorized" || p.AccessCookie != "access_token" {
		t.Errorf("got %+v", p)
	}

	for _, bad := range []string{"testdata/invalid-transport.yml", "testdata/invalid-unknown-key.yml", "testdata/missing.yml"} {
		t.Run(bad, func(t *testing.T) {
			pf, err := LoadFile(bad)
			if err == nil {
				_, err = Resolve(pf.Preset, pf.Profile)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalidProfile, got %v", err)
			}
		})
	}
}
