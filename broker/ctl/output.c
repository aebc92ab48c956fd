/* placeholder */
typedef int placeholder_output;
