package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PEM block types.
const (
	blockPKCS8       = "PRIVATE KEY"
	blockPKCS1       = "RSA PRIVATE KEY"
	blockSEC1        = "EC PRIVATE KEY"
	blockEncrypted   = "ENCRYPTED PRIVATE KEY"
	blockCSR         = "CERTIFICATE REQUEST"
	blockCertificate = "CERTIFICATE"
)

// EncodePrivateKey returns key as an unencrypted PKCS#8 PEM block
// ("PRIVATE KEY"), the format `openssl req -nodes -keyout` writes.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockPKCS8, Bytes: der}), nil
}

// ParsePrivateKey returns the first private key in PEM data: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// Other blocks before it, such as openssl's "EC PARAMETERS" or a
// certificate, are skipped. Encrypted keys are refused.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("parse private key: no private key PEM block")
		}
		if block.Type == blockEncrypted || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("parse private key: the key is encrypted; decrypt it first (openssl pkey -in encrypted.key -out private.key)")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case blockPKCS8:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case blockPKCS1:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case blockSEC1:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			if strings.HasSuffix(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("parse private key: unsupported PEM block %q; want PKCS#8, PKCS#1 or SEC1", block.Type)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key (%s): %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parse private key: %T cannot sign", key)
		}
		return signer, nil
	}
}

// ReadPrivateKey reads a private key file in any format ParsePrivateKey
// accepts.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// EncodeCSR returns a DER certificate signing request as a PEM block
// ("CERTIFICATE REQUEST").
func EncodeCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCSR, Bytes: der})
}

// EncodeCertificate returns a DER certificate as a PEM block
// ("CERTIFICATE").
func EncodeCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCertificate, Bytes: der})
}

// ParseCertificate returns the first certificate in PEM data.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("parse certificate: no CERTIFICATE PEM block")
		}
		if block.Type != blockCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}

// WriteFile writes data to path with permissions exactly perm (whatever the
// umask). Unless overwrite is set it refuses to replace an existing file and
// returns an error matching fs.ErrExist, leaving that file untouched. With
// overwrite, the new content is written to a temporary file in the same
// directory and renamed over path, so readers never see a partial file.
func WriteFile(path string, data []byte, perm fs.FileMode, overwrite bool) error {
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write %s: refusing to overwrite an existing file: %w", path, fs.ErrExist)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := fill(f, data, perm); err != nil {
			os.Remove(path)
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := fill(f, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fill sets f's mode, writes data, syncs and closes f.
func fill(f *os.File, data []byte, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
