/* The word features' keys in C, for keys.py (which has the same arithmetic in numpy, and says what a
   word and a key are): the words of a text's UTF-8 with the keys of each and of each pair of
   neighbours, and the keys of token strings. Only reads within the buffers it is given. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define P 0x100000001B3ULL
#define LENGTH 0x9E3779B97F4A7C15ULL
#define PAIR 0xC2B2AE3D27D4EB4FULL
#define PAIRED 0x165667B19E3779F9ULL
#define MIN_WORD 2
#define MAX_WORD 40

static unsigned char separator[256];

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDULL; x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53ULL; x ^= x >> 33;
    return x;
}

static inline uint64_t span_key(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = 0, power = 1;
    for (Py_ssize_t i = 0; i < n; i++) { h += ((uint64_t)s[i] + 1) * power; power *= P; }
    h ^= ((uint64_t)n + 1) * LENGTH;
    return mix(h);
}

static inline uint64_t pair_key(uint64_t left, uint64_t right) { return mix((left * PAIR + right) ^ PAIRED); }

/* word_keys(octets) -> (keys, spans): the words of a text's UTF-8 (runs of MIN_WORD..MAX_WORD characters
   between separators, longer runs cut into pieces of MAX_WORD characters), each word's key then each
   neighbouring pair's, as native uint64; spans as native int64 (start, end) pairs. */
static PyObject *word_keys(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *text = view.buf;
    Py_ssize_t size = view.len;
    Py_ssize_t capacity = size / 2 + 1; /* every word (or piece of a long run) has 2 octets or more */
    int64_t *spans = PyMem_Malloc(sizeof(int64_t) * 2 * capacity);
    if (spans == NULL) { PyBuffer_Release(&view); return PyErr_NoMemory(); }
    Py_ssize_t count = 0, i = 0;
    while (i < size) {
        while (i < size && separator[text[i]]) i++;
        Py_ssize_t start = i, chars = 0;
        while (i < size && !separator[text[i]]) {
            if ((text[i] & 0xC0) != 0x80) {
                if (chars == MAX_WORD) { /* a piece is full: it ends before this character */
                    spans[2 * count] = start; spans[2 * count + 1] = i; count++;
                    start = i; chars = 0;
                }
                chars++;
            }
            i++;
        }
        if (chars >= MIN_WORD) { spans[2 * count] = start; spans[2 * count + 1] = i; count++; }
    }
    Py_ssize_t total = count ? 2 * count - 1 : 0;
    PyObject *keys = PyBytes_FromStringAndSize(NULL, sizeof(uint64_t) * total);
    PyObject *out = NULL;
    if (keys != NULL) {
        uint64_t *k = (uint64_t *)PyBytes_AS_STRING(keys);
        for (Py_ssize_t w = 0; w < count; w++) k[w] = span_key(text + spans[2 * w], spans[2 * w + 1] - spans[2 * w]);
        for (Py_ssize_t w = 0; w + 1 < count; w++) k[count + w] = pair_key(k[w], k[w + 1]);
        PyObject *where = PyBytes_FromStringAndSize((const char *)spans, sizeof(int64_t) * 2 * count);
        if (where != NULL) { out = PyTuple_Pack(2, keys, where); Py_DECREF(where); }
        Py_DECREF(keys);
    }
    PyMem_Free(spans);
    PyBuffer_Release(&view);
    return out;
}

static int string_key(PyObject *string, uint64_t *key) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(string, &n);
    PyObject *encoded = NULL;
    if (s == NULL) { /* a lone surrogate: as "surrogatepass" encodes it */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
        PyErr_Clear();
        encoded = PyUnicode_AsEncodedString(string, "utf-8", "surrogatepass");
        if (encoded == NULL) return -1;
        s = PyBytes_AS_STRING(encoded); n = PyBytes_GET_SIZE(encoded);
    }
    const char *space = memchr(s, ' ', n);
    if (space == NULL) *key = span_key((const unsigned char *)s, n);
    else {
        Py_ssize_t left = space - s;
        *key = pair_key(span_key((const unsigned char *)s, left), span_key((const unsigned char *)space + 1, n - left - 1));
    }
    Py_XDECREF(encoded);
    return 0;
}

/* string_keys(strings) -> keys: each str's key as native uint64 (one with a space: the pair of its part
   before the first space and the rest). */
static PyObject *string_keys(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *items = PySequence_Fast(arg, "string_keys() takes a collection of str");
    if (items == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    PyObject *keys = PyBytes_FromStringAndSize(NULL, sizeof(uint64_t) * n);
    if (keys == NULL) { Py_DECREF(items); return NULL; }
    uint64_t *k = (uint64_t *)PyBytes_AS_STRING(keys);
    PyObject **item = PySequence_Fast_ITEMS(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_Check(item[i])) { PyErr_SetString(PyExc_TypeError, "string_keys() takes str only"); goto fail; }
        if (string_key(item[i], &k[i]) < 0) goto fail;
    }
    Py_DECREF(items);
    return keys;
fail:
    Py_DECREF(items); Py_DECREF(keys);
    return NULL;
}

static PyMethodDef methods[] = {
    {"word_keys", word_keys, METH_O, "word_keys(octets) -> (keys, spans)"},
    {"string_keys", string_keys, METH_O, "string_keys(strings) -> keys"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wordkeys", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__wordkeys(void) {
    const char *separators = "\"'`<>()[]{},;:|*= \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f";
    for (const char *c = separators; *c; c++) separator[(unsigned char)*c] = 1;
    return PyModule_Create(&module);
}
