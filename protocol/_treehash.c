/* The hashing of a branch's state tree (docs/PROTOCOL.md §8) in C: speed only.
 *
 * set_hash(leaves, depth) and inner_hash(left, right) compute exactly what
 * protocol/state_tree.py's pure-Python _set_hash_py and _inner_hash_py compute, for
 * every input those accept: the same recursion, the same split, the same errors.
 * state_tree.py uses these when this module was built and falls back to the Python
 * otherwise (a machine without a C compiler or OpenSSL's headers installs without
 * it: the extension is optional in pyproject.toml). tests/test_state_tree.py checks
 * the two agree on random and adversarial inputs, and the vectors of PROTOCOL.md
 * are checked against whichever one is in use.
 *
 * SHA-256 is OpenSSL's (libcrypto), the library Python's hashlib uses too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
/* The low-level SHA256_Init/Update/Final: OpenSSL 3 deprecates them, but its one-shot
 * SHA256() looks the algorithm up on every call and costs twice as much for 65 bytes. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define HASH_SIZE 32
#define LEAF_SIZE 64 /* leaf hash || key */
#define KEY_BITS 256
#define STACK_LEAVES 64

static void
sha256(const unsigned char *data, size_t size, unsigned char *out)
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, size);
    SHA256_Final(out, &ctx);
}

/* sha256(b"") */
static const unsigned char EMPTY[HASH_SIZE] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

/* §8's node(S, depth) over leaves[0..n), as state_tree._set_hash_py: one leaf is carried
 * up as its hash; otherwise split at the first leaf whose key bit ``depth`` is 1, hash
 * each side (EMPTY for an empty side) and hash 0x01 || left || right. Returns -1 when two
 * leaves reach depth 256 (the same key); the caller raises. */
static int
set_hash(const unsigned char **leaves, Py_ssize_t n, int depth, unsigned char *out)
{
    unsigned char buf[1 + 2 * HASH_SIZE];
    Py_ssize_t i = 0;
    int byte, shift;

    if (n == 1) {
        memcpy(out, leaves[0], HASH_SIZE);
        return 0;
    }
    if (depth >= KEY_BITS)
        return -1;
    byte = HASH_SIZE + (depth >> 3);
    shift = 7 - (depth & 7);
    while (i < n && !((leaves[i][byte] >> shift) & 1))
        i++;
    buf[0] = 0x01;
    if (i == 0)
        memcpy(buf + 1, EMPTY, HASH_SIZE);
    else if (set_hash(leaves, i, depth + 1, buf + 1) < 0)
        return -1;
    if (i == n)
        memcpy(buf + 1 + HASH_SIZE, EMPTY, HASH_SIZE);
    else if (set_hash(leaves + i, n - i, depth + 1, buf + 1 + HASH_SIZE) < 0)
        return -1;
    sha256(buf, sizeof buf, out);
    return 0;
}

static PyObject *
py_set_hash(PyObject *module, PyObject *args)
{
    PyObject *seq, *fast, *result = NULL;
    int depth;
    const unsigned char *stack[STACK_LEAVES];
    const unsigned char **leaves = stack;
    unsigned char out[HASH_SIZE];
    Py_ssize_t n, k;

    if (!PyArg_ParseTuple(args, "Oi:set_hash", &seq, &depth))
        return NULL;
    if (depth < 0 || depth > KEY_BITS) {
        PyErr_SetString(PyExc_ValueError, "depth outside [0, 256]");
        return NULL;
    }
    fast = PySequence_Fast(seq, "leaves must be a sequence");
    if (fast == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    if (n > STACK_LEAVES) {
        leaves = PyMem_Malloc(n * sizeof *leaves);
        if (leaves == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (k = 0; k < n; k++) {
        PyObject *leaf = PySequence_Fast_GET_ITEM(fast, k);
        if (!PyBytes_Check(leaf) || PyBytes_GET_SIZE(leaf) != LEAF_SIZE) {
            PyErr_SetString(PyExc_TypeError, "a leaf is 64 bytes: leaf hash || key");
            goto done;
        }
        leaves[k] = (const unsigned char *)PyBytes_AS_STRING(leaf);
    }
    if (set_hash(leaves, n, depth, out) < 0) {
        PyErr_SetString(PyExc_ValueError, "two subjects with the same key");
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
done:
    if (leaves != stack)
        PyMem_Free(leaves);
    Py_DECREF(fast);
    return result;
}

static PyObject *
py_inner_hash(PyObject *module, PyObject *args)
{
    Py_buffer left, right;
    unsigned char stack[1 + 2 * HASH_SIZE], out[HASH_SIZE];
    unsigned char *buf = stack;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*:inner_hash", &left, &right))
        return NULL;
    if (left.len + right.len > 2 * HASH_SIZE) {
        buf = PyMem_Malloc(1 + left.len + right.len);
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    buf[0] = 0x01;
    memcpy(buf + 1, left.buf, left.len);
    memcpy(buf + 1 + left.len, right.buf, right.len);
    sha256(buf, 1 + left.len + right.len, out);
    result = PyBytes_FromStringAndSize((const char *)out, HASH_SIZE);
done:
    if (buf != stack)
        PyMem_Free(buf);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    return result;
}

static PyMethodDef methods[] = {
    {"set_hash", py_set_hash, METH_VARARGS,
     "set_hash(leaves, depth) -> bytes: §8's node(S, depth) over sorted 64-byte leaves."},
    {"inner_hash", py_inner_hash, METH_VARARGS,
     "inner_hash(left, right) -> bytes: sha256(0x01 || left || right)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_treehash", "The state tree's hashing in C (speed only; see state_tree.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__treehash(void)
{
    return PyModule_Create(&module);
}
