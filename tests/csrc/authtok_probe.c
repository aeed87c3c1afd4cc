/*
 * authtok_probe.so: a test-only PAM module that shows what a module under
 * test does with PAM_AUTHTOK. libpam hides the item from applications, so
 * only a module in the same stack can set or read it.
 *
 *   auth [default=ignore] authtok_probe.so set
 *       Stacked before the module under test: if the environment variable
 *       PAM_TOTP_PROBE_AUTHTOK is set, sets PAM_AUTHTOK to its value (as an
 *       earlier pam_unix would have); if it is not set, leaves the item unset.
 *
 *   auth [default=ignore] authtok_probe.so record=FILE
 *       Stacked after it: writes to FILE either "unset\n" or "set " followed
 *       by the value in hexadecimal and "\n". It runs whatever the module
 *       under test returned (a "required" module does not stop the stack).
 *
 * Both return PAM_IGNORE so that they never sway the verdict.
 */
#include <fcntl.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int record(pam_handle_t *pamh, const char *path) {
  const void *item = NULL;
  int rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    return PAM_IGNORE;
  }
  if (rc != PAM_SUCCESS || item == NULL) {
    (void)!write(fd, "unset\n", 6);
  } else {
    const unsigned char *value = item;
    size_t len = strlen((const char *)value);
    char *line = malloc(4 + 2 * len + 2);
    if (line != NULL) {
      size_t at = 0;
      memcpy(line, "set ", 4);
      at = 4;
      for (size_t i = 0; i < len; i++) {
        at += (size_t)snprintf(line + at, 3, "%02x", value[i]);
      }
      line[at++] = '\n';
      (void)!write(fd, line, at);
      free(line);
    }
  }
  close(fd);
  return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
                                   const char **argv) {
  (void)flags;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "set") == 0) {
      const char *value = getenv("PAM_TOTP_PROBE_AUTHTOK");
      if (value != NULL) {
        pam_set_item(pamh, PAM_AUTHTOK, value);
      }
    } else if (strncmp(argv[i], "record=", 7) == 0) {
      record(pamh, argv[i] + 7);
    }
  }
  return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc,
                              const char **argv) {
  (void)pamh;
  (void)flags;
  (void)argc;
  (void)argv;
  return PAM_IGNORE;
}
