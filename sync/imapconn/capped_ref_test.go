package imapconn

// refScanner is the byte-at-a-time specification of scanner: slow, with no
// windows or chunk bookkeeping, so that fuzzing can check the fast scanner
// against it on any split of the input.
type refScanner struct {
	maxLine int
	maxLit  int64
	failed  bool

	litLeft  int64
	respLen  int
	kind     int
	head     []byte // response bytes before its first LF, at most headCap
	seg      []byte // line bytes since the last LF or literal end
	inQuote  bool
	esc      bool
	codeOpen bool
}

// feed consumes one byte and reports whether it may be handed on.
func (r *refScanner) feed(b byte) bool {
	if r.failed {
		return false
	}
	if r.litLeft > 0 {
		r.litLeft--
		return true
	}
	if r.kind == kindUnknown {
		final := b == '\n' || len(r.head)+1 == headCap
		h := r.head
		if b != '\n' {
			h = append(h, b)
		}
		if kind, codeAt, ok := classify(h, final); ok {
			r.kind = kind
			if kind == kindText && codeAt >= 0 {
				r.codeOpen = true
			}
		}
		if b != '\n' {
			r.head = h
		}
	}
	if b != '\n' {
		if !r.count() {
			return false
		}
		r.seg = append(r.seg, b)
		switch r.kind {
		case kindData:
			switch {
			case r.esc:
				r.esc = false
			case r.inQuote && b == '\\':
				r.esc = true
			case b == '"':
				r.inQuote = !r.inQuote
			}
		case kindText:
			if r.codeOpen && b == ']' {
				r.codeOpen = false
			}
		}
		return true
	}
	// LF.
	goesOn := false
	switch r.kind {
	case kindText:
		goesOn = r.codeOpen
	case kindData:
		if r.esc || r.inQuote {
			r.esc = false
			goesOn = true
		} else if size, isLit, tooBig := literalAnnounced(r.seg, r.maxLit); tooBig {
			r.failed = true
			return false
		} else if isLit {
			if !r.count() {
				return false
			}
			r.litLeft = int64(size)
			r.seg = nil
			return true
		}
	}
	if goesOn {
		if !r.count() {
			return false
		}
		r.seg = nil
		return true
	}
	r.respLen, r.kind, r.head, r.seg = 0, kindUnknown, nil, nil
	r.inQuote, r.esc, r.codeOpen = false, false, false
	return true
}

func (r *refScanner) count() bool {
	r.respLen++
	if r.respLen > r.maxLine {
		r.failed = true
		return false
	}
	return true
}

// run feeds all of in and returns how many bytes pass and whether a limit
// was broken.
func (r *refScanner) run(in []byte) (int, bool) {
	for i, b := range in {
		if !r.feed(b) {
			return i, true
		}
	}
	return len(in), false
}
