package mailgen

import (
	"encoding/binary"
	"fmt"
	"html"
	"math"
	"math/rand/v2"
	"path"
	"strings"
)

// attachment is a file carried in multipart/mixed.
type attachment struct {
	name  string
	ctype string
	data  []byte
}

var mimeTypes = map[string]string{
	".pdf":  "application/pdf",
	".png":  "image/png",
	".zip":  "application/zip",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}

// attachFiles adds one to three files whose encoded size averages budget
// bytes, with a heavy tail as real attachments have.
func (g *Generator) attachFiles(d *draft, t *thread, budget int) {
	n := 1
	if r := g.rng.Float64(); r > 0.9 {
		n = 3
	} else if r > 0.7 {
		n = 2
	}
	const sigma = 0.8
	// base64 with CRLF every 76 characters costs 4/3 * 78/76; part
	// headers add about 300 bytes per file.
	raw := (float64(budget) - 300*float64(n)) / (4.0 / 3 * 78 / 76)
	raw *= math.Exp(sigma*g.rng.NormFloat64() - sigma*sigma/2)
	for i := range n {
		share := raw / float64(n)
		if n > 1 {
			share = raw * (0.5 + g.rng.Float64()) / float64(n)
		}
		name := g.fill(t.topic.files[g.rng.IntN(len(t.topic.files))], t.vars)
		if i > 0 {
			name = fmt.Sprintf("%s_%d%s", strings.TrimSuffix(name, path.Ext(name)), i+1, path.Ext(name))
		}
		size := max(int(share), 600)
		ext := path.Ext(name)
		d.attach = append(d.attach, attachment{name: name, ctype: mimeTypes[ext], data: fakeFile(g, ext, size)})
	}
}

// randBytes returns n pseudo-random bytes from the generator's stream.
func (g *Generator) randBytes(n int) []byte {
	// A ChaCha8 stream keyed from the generator fills bulk bytes much
	// faster than drawing them one word at a time, and stays deterministic.
	var key [32]byte
	for i := 0; i < len(key); i += 8 {
		binary.LittleEndian.PutUint64(key[i:], g.rng.Uint64())
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// fakeFile returns size bytes that start and end like a real file of the
// type, with random (incompressible) content between.
func fakeFile(g *Generator, ext string, size int) []byte {
	switch ext {
	case ".png":
		return fakePNG(g, size)
	case ".pdf":
		head := "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Length 4 0 R /Filter /FlateDecode >>\nstream\n"
		tail := "\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
		return frame(g, head, tail, size)
	default: // zip, xlsx, docx are all zip containers
		return frame(g, "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00", size)
	}
}

func fakePNG(g *Generator, size int) []byte {
	return frame(g, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x06\x00\x00\x00", "\x00\x00\x00\x00IEND\xaeB`\x82", size)
}

func frame(g *Generator, head, tail string, size int) []byte {
	mid := max(size-len(head)-len(tail), 16)
	b := make([]byte, 0, len(head)+mid+len(tail))
	b = append(b, head...)
	b = append(b, g.randBytes(mid)...)
	return append(b, tail...)
}

// newsBody writes a newsletter: a table-based HTML layout with tracking
// links, and a plain-text alternative.
func (g *Generator) newsBody(d *draft, n Newsletter, token string) {
	dom := domainOf(n.From)
	var h, t strings.Builder
	h.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`)
	h.WriteString(`<style type="text/css">body{margin:0;padding:0;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2933}.wrapper{width:100%;table-layout:fixed}.main{max-width:640px;margin:0 auto;background:#ffffff}h2{font-size:20px;line-height:28px;margin:0 0 8px}p{font-size:15px;line-height:24px;margin:0 0 12px}.btn{background:#2563eb;color:#ffffff;border-radius:4px;padding:10px 18px;text-decoration:none;display:inline-block}@media screen and (max-width:600px){.main{width:100%!important}}</style></head>` + "\n")
	fmt.Fprintf(&h, `<body><center class="wrapper"><table class="main" role="presentation" width="640" cellpadding="0" cellspacing="0" border="0"><tr><td style="padding:24px 32px;background:#111827"><img src="https://cdn.%s/assets/logo.png" width="160" height="40" alt="%s" style="display:block;border:0"></td></tr>`+"\n", dom, html.EscapeString(n.Name))
	fmt.Fprintf(&t, "%s\n%s\n\nView in your browser: https://%s/v/%s\n\n", n.Name, strings.Repeat("=", len(n.Name)), dom, token)
	for i := range 6 + g.rng.IntN(10) {
		title := g.pick(newsHeadlines)
		link := fmt.Sprintf("https://click.%s/c/%s/%d?utm_source=newsletter&utm_medium=email&utm_campaign=%s&utm_content=article-%d", dom, token, i, token[:8], i)
		fmt.Fprintf(&h, `<tr><td style="padding:24px 32px;border-bottom:1px solid #e5e7eb"><img src="https://cdn.%s/img/%s-%d.jpg" width="576" height="240" alt="" style="display:block;width:100%%;height:auto;border:0;margin-bottom:16px">`, dom, token[:6], i)
		fmt.Fprintf(&h, `<h2 style="font-size:20px;line-height:28px;margin:0 0 8px;color:#111827">%s</h2>`, html.EscapeString(title))
		fmt.Fprintf(&t, "%s\n%s\n\n", strings.ToUpper(title), strings.Repeat("-", len(title)))
		for range 2 + g.rng.IntN(3) {
			line := g.pick(newsLines)
			fmt.Fprintf(&h, `<p style="font-size:15px;line-height:24px;margin:0 0 12px;color:#374151">%s</p>`, html.EscapeString(line))
			t.WriteString(line + "\n\n")
		}
		fmt.Fprintf(&h, `<a class="btn" href="%s" style="background:#2563eb;color:#ffffff;border-radius:4px;padding:10px 18px;text-decoration:none;display:inline-block">Read more &rarr;</a></td></tr>`+"\n", link)
		fmt.Fprintf(&t, "Read more: %s\n\n", link)
	}
	unsub := "https://" + dom + "/unsubscribe?u=" + token
	fmt.Fprintf(&h, `<tr><td style="padding:24px 32px;font-size:12px;color:#6b7280">You receive this email because you subscribed to %s. <a href="%s" style="color:#6b7280">Unsubscribe</a> &middot; <a href="https://%s/preferences?u=%s" style="color:#6b7280">Preferences</a><br>%s, 1 Example Way, Springfield<img src="https://t.%s/o/%s.gif" width="1" height="1" alt=""></td></tr></table></center></body></html>`+"\n",
		html.EscapeString(n.Name), unsub, dom, token, html.EscapeString(n.Name), dom, token)
	fmt.Fprintf(&t, "Unsubscribe: %s\n", unsub)
	d.text, d.html = t.String(), h.String()
}
