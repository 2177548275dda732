/* config_doc.c -- what operators read about the settings, generated from
 * the settings table (config.c): --help, and the keys of the sample
 * palaverd.conf and of palaverd.conf(5) (palaverd --print-settings).
 *
 * Threads: main only (start-up and the --help/--print-settings paths).
 * Pure: writes to the FILE it is given. */
#include "palaver/config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The help text of s with %D replaced by its default. */
static void help_of(size_t i, char *out, size_t n)
{
    struct pv_setting_doc d;
    pv_config_setting_doc(i, &d);
    char def[256];
    pv_config_setting_default(i, def, sizeof(def));
    size_t k = 0;
    for (const char *p = d.help; *p && k + 1 < n; p++) {
        if (p[0] == '%' && p[1] == 'D') {
            k += (size_t)snprintf(out + k, n - k, "%s", def);
            if (k >= n)
                k = n - 1;
            p++;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = '\0';
}

/* Writes text's words wrapped at `width` columns: the cursor is at column
 * `col` (what came before is written), continuation lines start with
 * `indent`; a word is preceded by a space unless it starts a line. */
static void wrap(FILE *f, const char *text, int col, const char *indent, int width)
{
    int ind = (int)strlen(indent);
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        if (!end)
            end = p + strlen(p);
        int len = (int)(end - p);
        if (col > ind && col + 1 + len > width) {
            fprintf(f, "\n%s", indent);
            col = ind;
        }
        if (col > ind) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", len, p);
        col += len;
        p = end;
    }
    fputc('\n', f);
}

static void usage_line(FILE *f, const char *opt, const char *help)
{
    int col = fprintf(f, "%s", opt);
    if (col < 27) {
        fprintf(f, "%*s", 27 - col, "");
        col = 27;
    }
    /* The help column: col is 27 now (or past it, after a long flag). */
    static const char column[] = "                           ";
    if (col == 27) {
        const char *sp = strchr(help, ' ');
        int len = sp ? (int)(sp - help) : (int)strlen(help);
        fprintf(f, "%.*s", len, help); /* the first word starts the column */
        col += len;
        help += len;
    }
    wrap(f, help, col, column, 79);
}

void pv_config_usage(FILE *f)
{
    char opt[96], help[1024];
    fputs("Usage: palaverd [OPTION]...\n"
          "WebSocket chat broker: serves the chat page and relays messages.\n"
          "Settings come from the defaults, the configuration file, the environment\n"
          "(PORT, PALAVER_<KEY>) and these flags, later ones winning; every flag below\n"
          "is also a file key (max-clients = 1000); palaverd.conf(5) explains them.\n"
          "\n",
          f);
    usage_line(f, "  -C, --config PATH",
               "configuration file (default " PV_DEFAULT_CONFIG
               "; a missing default file is fine)");
    usage_line(f, "      --check-config", "check the configuration, print it, exit 0 or 2");
    usage_line(f, "      --create-admin NAME",
               "create an admin account in --data-dir (password read from standard input), exit");
    for (size_t i = 0; i < pv_config_setting_count(); i++) {
        struct pv_setting_doc doc;
        pv_config_setting_doc(i, &doc);
        const struct pv_setting_doc *s = &doc;
        if (!s->help)
            continue;
        if (s->short_opt)
            snprintf(opt, sizeof(opt), "  -%c, --%s %s", s->short_opt, s->name, s->arg);
        else
            snprintf(opt, sizeof(opt), "      --%s %s", s->name, s->arg);
        help_of(i, help, sizeof(help));
        usage_line(f, opt, help);
    }
    usage_line(f, "  -h, --help", "show this help and exit");
    usage_line(f, "  -V, --version", "show the version and exit");
}

/* roff: a backslash and a minus written literally. */
static void man_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '-')
            fputc('\\', f);
        fputc(*s, f);
    }
}

void pv_config_print_settings(FILE *f, const char *format)
{
    bool man = strcmp(format, "man") == 0;
    char help[1024], def[256];
    for (size_t i = 0; i < pv_config_setting_count(); i++) {
        struct pv_setting_doc doc;
        pv_config_setting_doc(i, &doc);
        const struct pv_setting_doc *s = &doc;
        if (!s->help)
            continue;
        help_of(i, help, sizeof(help));
        pv_config_setting_default(i, def, sizeof(def));
        bool htdocs = strcmp(s->name, "htdocs") == 0; /* its default is a build path */
        if (htdocs)
            snprintf(help, sizeof(help),
                     "directory of the chat page (default: the htdocs/ of the "
                     "source tree palaverd was built from; the systemd unit "
                     "passes the installed one, /usr/share/palaver/htdocs, as "
                     "a flag, which wins over this file)");
        if (man) {
            if (s->group) {
                fputs(".SS ", f);
                man_text(f, s->group);
                fputc('\n', f);
            }
            fputs(".TP\n\\fB", f);
            man_text(f, s->name);
            fputs("\\fR \\fI", f);
            man_text(f, s->arg);
            fputs("\\fR\n", f);
            man_text(f, help);
            fputc('\n', f);
            continue;
        }
        if (s->group) {
            fputs("\n# -- ", f);
            wrap(f, s->group, 5, "#    ", 79);
        }
        fputs("# ", f);
        wrap(f, help, 2, "# ", 79);
        if (htdocs)
            continue; /* no default line: it would name this build's tree */
        if (def[0])
            fprintf(f, "#%s = %s\n", s->name, def);
        else
            fprintf(f, "#%s = \"\"\n", s->name);
    }
}
