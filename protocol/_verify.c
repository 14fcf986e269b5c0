/* Signature checks without the copies (docs/PROTOCOL.md §4): speed only.
 *
 * verify(public_key, signature, head, payload) -> bool is keys.PublicKey.verify's
 * check: libsodium's Ed25519 verification of `signature` over the signing bytes
 * head || bin header of payload || payload, where head is the canonical encoding of
 * [SIGNING_PREFIX, domain, chain_id, ...] up to the payload (keys.py builds and caches
 * it). The Python path concatenates the signature and those bytes, and PyNaCl's
 * crypto_sign_open allocates an output buffer and copies the message out of it: about
 * 2 µs a record (docs/PERFORMANCE.md). Here the message is assembled once, in a buffer
 * of ours, and given to crypto_sign_verify_detached with the GIL released.
 * verify_many(checks) does the same for a list of checks with the GIL released once
 * (keys.verify_many; node/chain.py checks records so, in groups).
 *
 * The libsodium is the one PyNaCl ships and has already loaded: bind(path) finds it
 * with dlopen(RTLD_NOLOAD) and looks up crypto_sign_verify_detached, which runs the
 * very check crypto_sign_open runs (libsodium's crypto_sign_ed25519_open calls the
 * same internal verification, then copies the message). No libsodium headers or
 * library are needed to build this file. If the symbol is not there, bind returns
 * False and keys.py keeps its Python path; tests/test_verify_fast.py checks both
 * paths agree, on valid and on broken signatures.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <string.h>

#define PUBLIC_KEY_SIZE 32 /* keys.PUBLIC_KEY_SIZE */
#define SIGNATURE_SIZE 64  /* keys.SIGNATURE_SIZE */
#define MAX_HEAD 256       /* a head longer than this is checked by the Python path (the module's MAX_HEAD) */
#define STACK_MESSAGE 16384

typedef int (*verify_detached_fn)(const unsigned char *sig, const unsigned char *m, unsigned long long mlen,
                                  const unsigned char *pk);

static verify_detached_fn verify_detached = NULL;

static PyObject *
py_bind(PyObject *self, PyObject *arg)
{
    const char *path = PyUnicode_AsUTF8(arg);
    if (path == NULL)
        return NULL;
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL)
        Py_RETURN_FALSE;
    void *sym = dlsym(lib, "crypto_sign_verify_detached");
    if (sym == NULL)
        Py_RETURN_FALSE;
    verify_detached = (verify_detached_fn)sym; /* the handle stays open: the library is PyNaCl's, loaded for good */
    Py_RETURN_TRUE;
}

/* msgpack's bin header for n bytes, the shortest form (§4); returns its length. */
static Py_ssize_t
bin_header(unsigned char *out, Py_ssize_t n)
{
    if (n < 256) {
        out[0] = 0xc4;
        out[1] = (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        out[0] = 0xc5;
        out[1] = (unsigned char)(n >> 8);
        out[2] = (unsigned char)n;
        return 3;
    }
    out[0] = 0xc6;
    out[1] = (unsigned char)(n >> 24);
    out[2] = (unsigned char)(n >> 16);
    out[3] = (unsigned char)(n >> 8);
    out[4] = (unsigned char)n;
    return 5;
}

/* 0 if item[0..3] are (public_key, signature, head, payload) as a check takes them: four
 * bytes objects, a 32-byte key, a 64-byte signature, a head of at most MAX_HEAD bytes;
 * else -1 with TypeError or ValueError set. */
static int
check_items(PyObject *const *item)
{
    for (int i = 0; i < 4; i++) {
        if (!PyBytes_CheckExact(item[i])) {
            PyErr_SetString(PyExc_TypeError, "a check is four bytes objects: (public_key, signature, head, payload)");
            return -1;
        }
    }
    if (PyBytes_GET_SIZE(item[0]) != PUBLIC_KEY_SIZE || PyBytes_GET_SIZE(item[1]) != SIGNATURE_SIZE ||
        PyBytes_GET_SIZE(item[2]) > MAX_HEAD || (size_t)PyBytes_GET_SIZE(item[3]) > 0xffffffffu) {
        PyErr_SetString(PyExc_ValueError, "a 32-byte key, a 64-byte signature, a head of at most 256 bytes");
        return -1;
    }
    return 0;
}

/* The signed message, head || bin header of payload || payload, written to msg (room for
 * message_size(item) bytes); returns its length. Needs no GIL: the bytes are immutable. */
static Py_ssize_t
assemble(unsigned char *msg, PyObject *const *item)
{
    Py_ssize_t at = PyBytes_GET_SIZE(item[2]);
    memcpy(msg, PyBytes_AS_STRING(item[2]), (size_t)at);
    at += bin_header(msg + at, PyBytes_GET_SIZE(item[3]));
    memcpy(msg + at, PyBytes_AS_STRING(item[3]), (size_t)PyBytes_GET_SIZE(item[3]));
    return at + PyBytes_GET_SIZE(item[3]);
}

static Py_ssize_t
message_size(PyObject *const *item)
{
    return PyBytes_GET_SIZE(item[2]) + 5 + PyBytes_GET_SIZE(item[3]);
}

static int
verify_assembled(PyObject *const *item, const unsigned char *msg, Py_ssize_t len)
{
    return verify_detached((const unsigned char *)PyBytes_AS_STRING(item[1]), msg, (unsigned long long)len,
                           (const unsigned char *)PyBytes_AS_STRING(item[0])) == 0;
}

static PyObject *
py_verify(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "verify(public_key, signature, head, payload)");
        return NULL;
    }
    if (check_items(args) < 0)
        return NULL;
    if (verify_detached == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() has not found libsodium");
        return NULL;
    }
    unsigned char stack[STACK_MESSAGE];
    unsigned char *msg = stack;
    Py_ssize_t len = message_size(args);
    if (len > STACK_MESSAGE && (msg = PyMem_Malloc((size_t)len)) == NULL)
        return PyErr_NoMemory();

    int ok;
    /* the key, signature, head and payload are immutable bytes the caller holds; the message is ours */
    Py_BEGIN_ALLOW_THREADS
    ok = verify_assembled(args, msg, assemble(msg, args));
    Py_END_ALLOW_THREADS
    if (msg != stack)
        PyMem_Free(msg);
    return PyBool_FromLong(ok);
}

/* verify_many(checks) -> bytes: verify's check for each (public_key, signature, head,
 * payload) of the list, one byte 1 (valid) or 0 each, all with the GIL released once: a
 * worker thread checking a batch one verify() at a time waits for the GIL again after
 * every check while another thread runs Python (in CPython a thread that wants the GIL
 * back waits for the holder to release it, up to the switch interval, 5 ms). Each message
 * is assembled in turn in one buffer of ours, the size of the longest: the checks' bytes
 * objects, immutable and held by our tuple of the list, are read in place, so the call
 * needs no more memory than one message. Raises as verify does for a malformed check. */
static PyObject *
py_verify_many(PyObject *self, PyObject *arg)
{
    PyObject *checks, *result = NULL;
    Py_ssize_t n, k, longest = 0;
    unsigned char stack[STACK_MESSAGE], *msg = stack, *out;

    if (verify_detached == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() has not found libsodium");
        return NULL;
    }
    if (!PyList_CheckExact(arg) && !PyTuple_CheckExact(arg)) {
        PyErr_SetString(PyExc_TypeError, "verify_many takes a list of checks");
        return NULL;
    }
    if ((checks = PySequence_Tuple(arg)) == NULL) /* ours: the list may change once the GIL is released */
        return NULL;
    n = PyTuple_GET_SIZE(checks);
    for (k = 0; k < n; k++) { /* check every item, and find the longest message */
        PyObject *item = PyTuple_GET_ITEM(checks, k);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 4) {
            PyErr_SetString(PyExc_TypeError, "a check is (public_key, signature, head, payload)");
            goto done;
        }
        if (check_items(&PyTuple_GET_ITEM(item, 0)) < 0)
            goto done;
        Py_ssize_t len = message_size(&PyTuple_GET_ITEM(item, 0));
        if (len > longest)
            longest = len;
    }
    if ((result = PyBytes_FromStringAndSize(NULL, n)) == NULL)
        goto done;
    if (longest > STACK_MESSAGE && (msg = PyMem_Malloc((size_t)longest)) == NULL) {
        Py_CLEAR(result);
        PyErr_NoMemory();
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result); /* ours alone until returned */
    Py_BEGIN_ALLOW_THREADS
    for (k = 0; k < n; k++) {
        PyObject *const *item = &PyTuple_GET_ITEM(PyTuple_GET_ITEM(checks, k), 0);
        out[k] = (unsigned char)verify_assembled(item, msg, assemble(msg, item));
    }
    Py_END_ALLOW_THREADS
    if (msg != stack)
        PyMem_Free(msg);
done:
    Py_DECREF(checks);
    return result;
}

static PyMethodDef methods[] = {
    {"bind", py_bind, METH_O,
     "bind(path) -> bool: use crypto_sign_verify_detached from the already loaded libsodium at path."},
    {"verify", (PyCFunction)(void (*)(void))py_verify, METH_FASTCALL,
     "verify(public_key, signature, head, payload) -> bool: libsodium's Ed25519 check of signature over "
     "head + bin header + payload."},
    {"verify_many", py_verify_many, METH_O,
     "verify_many([(public_key, signature, head, payload), ...]) -> bytes: one byte per check, 1 if it verifies; "
     "the GIL released once for all."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_verify", "Ed25519 checks through PyNaCl's libsodium, without copies (speed only; see keys.py).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__verify(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "MAX_HEAD", MAX_HEAD) < 0)
        Py_CLEAR(m);
    return m;
}
