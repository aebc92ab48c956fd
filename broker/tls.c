/* placeholder */
typedef int placeholder_tls;
