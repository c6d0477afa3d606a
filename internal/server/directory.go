package server

import (
	"context"
	"maps"

	"github.com/warden-a2a/warden/internal/truststate"
)

// syncDirectory makes the trust state's directory equal to the registration entries,
// writing a new version only when they differ. It runs at start and after every entry
// change, so gates always decide with the control plane's attributes of a caller.
func (s *Server) syncDirectory(ctx context.Context) error {
	entries, err := s.cfg.Store.ListEntries(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]truststate.DirectoryEntry, len(entries))
	for _, e := range entries {
		want[e.SPIFFEID] = truststate.DirectoryEntry{Name: e.Name, Role: e.Role, Class: e.Class, Zone: e.Zone}
	}
	if _, doc := s.trust.Current(); maps.Equal(doc.Directory, want) || len(doc.Directory) == 0 && len(want) == 0 {
		return nil
	}
	_, err = s.trust.Update(ctx, func(d *truststate.Document) error {
		d.Directory = want
		if len(want) == 0 {
			d.Directory = nil
		}
		return nil
	})
	return err
}
