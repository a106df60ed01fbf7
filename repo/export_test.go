package repo

// Incompressible is the sampling test compress runs on r's encoder.
func Incompressible(r *Repository, p []byte) bool { return incompressible(r.zenc, p, nil) }

// PayloadCompression is the compression byte compress gives p.
func PayloadCompression(r *Repository, p []byte) byte {
	bp := r.compress(p)
	defer r.payloads.put(bp)
	return (*bp)[0]
}
